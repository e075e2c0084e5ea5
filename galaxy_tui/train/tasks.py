"""What a run learns and how it is judged. The loop, the probe and the worker ask the task for its
targets, loss, predictions, validation score and the direction of "best" instead of branching on its
name (classification today; vote-fraction regression fits the same shape)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from galaxy_tui.registry import Experiment
from galaxy_tui.train.batches import class_weights


class ClassificationTask:
    """One class per galaxy: cross-entropy (class weights and label smoothing as configured), softmax
    probabilities, validation accuracy (higher is better)."""

    metric = "val_acc"
    higher_is_better = True

    def __init__(self, num_classes: int, experiment: Experiment, train_labels: np.ndarray):
        self.outputs = num_classes
        self.smoothing = experiment.label_smoothing
        weight = class_weights(train_labels, num_classes) if experiment.sampler == "class-weights" else None
        self.weight_host = weight.numpy() if weight is not None else None
        self._weight = weight
        self._weight_on: dict[torch.device, torch.Tensor] = {}

    def _weight_for(self, device: torch.device) -> torch.Tensor | None:
        if self._weight is None:
            return None
        if device not in self._weight_on:
            self._weight_on[device] = self._weight.to(device)
        return self._weight_on[device]

    def batch_weight(self, labels: np.ndarray) -> float:
        """The denominator of a whole batch's mean loss: its size, or the sum of its class weights, so a
        batch re-split into micro-batches has exactly the loss (and gradients) it has in one piece."""
        if self.weight_host is None:
            return float(len(labels))
        return float(self.weight_host[labels].sum())

    def targets(self, labels: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(labels).long().to(device, non_blocking=True)

    def loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss, summed over the micro-batch."""
        return F.cross_entropy(logits.float(), targets, weight=self._weight_for(logits.device),
                               label_smoothing=self.smoothing, reduction="sum")

    def eval_loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The reported loss: plain cross-entropy, so runs with other weights or smoothing compare."""
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), 1)

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        return float((predictions.argmax(1) == labels).mean()) if len(predictions) else 0.0

    def improved(self, value: float, best: float | None) -> bool:
        if value != value:  # NaN (nothing to validate on) is never a best
            return False
        return best is None or (value > best if self.higher_is_better else value < best)

    @property
    def scheduler_mode(self) -> str:
        """For ReduceLROnPlateau: the score should go up ("max") or down ("min")."""
        return "max" if self.higher_is_better else "min"
