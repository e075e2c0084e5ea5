"""What a run learns and how it is judged. The loop, the probe and the worker's jobs ask the task for its
targets, loss, predictions, validation score, the direction of "best" and its headline figure instead of
branching on its name. Two implementations of the Task protocol: classification and vote fractions; a third
(multi-label, detection) is a third class here."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from galaxy_tui.analysis.fraction_results import errors
from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.vote_tree import VoteTree, answer_errors
from galaxy_tui.registry import Experiment
from galaxy_tui.scores import BY_KEY, Score
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS
from galaxy_tui.train.batches import class_weights


class _Judged:
    """A task's validation score (scores.SCORES: its name in events and which way is better)."""

    judged_by: Score

    @property
    def metric(self) -> str:
        return self.judged_by.key

    @property
    def higher_is_better(self) -> bool:
        return self.judged_by.higher_is_better

    def improved(self, value: float, best: float | None) -> bool:
        if value != value:  # NaN (nothing to validate on) is never a best
            return False
        return best is None or (value > best if self.higher_is_better else value < best)

    @property
    def scheduler_mode(self) -> str:
        """For ReduceLROnPlateau: the score should go up ("max") or down ("min")."""
        return "max" if self.higher_is_better else "min"


class ClassificationTask(_Judged):
    """One class per galaxy: cross-entropy (class weights and label smoothing as configured), softmax
    probabilities, validation accuracy (higher is better)."""

    kind = CLASSIFICATION
    judged_by = BY_KEY[kind.validation]
    headline = kind.headline
    reports_volunteers = True  # results show how sure the volunteers were of each galaxy

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

    def target_rows(self, dataset: Dataset, frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        return labels

    def headline_of(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        return round(float((predictions.argmax(1) == labels).mean()), 5)


class VoteFractionTask(_Judged):
    """The volunteers' answers down the decision tree. The head has one output per answer: a softmax per
    question (for the Dirichlet-multinomial loss, concentrations whose means are the fractions); for a
    cumulative tree (Kaggle's) each question's fractions are scaled by the predicted value of the answer
    that leads to it, so every sum constraint holds by construction. Targets are the catalogue's answers
    (NaN where it has none), followed by the vote counts when the loss needs them. Validation RMSE,
    lower is better."""

    kind = VOTE_FRACTIONS
    judged_by = BY_KEY[kind.validation]
    headline = kind.headline
    reports_volunteers = False

    def __init__(self, tree: VoteTree, loss: str):
        self.tree = tree
        self.loss = loss
        self.outputs = tree.outputs
        self.slices = tree.slices
        self.parents = [tree.parent_output(q) for q in tree.questions]
        # (question index, answer) that leads to each question
        self.parent_answers = [None if q.parent is None else (tree.index(q.parent[0]), q.parent[1])
                               for q in tree.questions]
        self.needs_counts = loss == "dirichlet-multinomial"

    def target_table(self, fractions: np.ndarray, counts: np.ndarray | None) -> np.ndarray:
        """One float32 row per galaxy, as `targets` and the losses read it."""
        if not self.needs_counts:
            return fractions.astype(np.float32)
        if counts is None:
            raise ValueError("the Dirichlet-multinomial loss needs vote counts")
        return np.concatenate([fractions, counts], axis=1).astype(np.float32)

    def batch_weight(self, labels: np.ndarray) -> float:
        return float(len(labels))

    def targets(self, labels: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(labels)).to(device, non_blocking=True)

    def _concentrations(self, logits: torch.Tensor) -> torch.Tensor:
        return 1.0 + 99.0 * torch.sigmoid(logits.float())  # Zoobot's range: 1 (flat) to 100 (sure)

    def _per_question(self, logits: torch.Tensor) -> torch.Tensor:
        """Each question's answer fractions, summing to 1 per question."""
        if self.needs_counts:
            alpha = self._concentrations(logits)
            return torch.cat([alpha[:, s:e] / alpha[:, s:e].sum(1, keepdim=True) for s, e in self.slices], 1)
        return torch.cat([torch.softmax(logits[:, s:e].float(), 1) for s, e in self.slices], 1)

    def _to_outputs(self, per_question: torch.Tensor) -> torch.Tensor:
        if not self.tree.cumulative:
            return per_question
        pieces: list[torch.Tensor] = []
        for (s, e), parent in zip(self.slices, self.parent_answers):
            piece = per_question[:, s:e]
            if parent is not None:  # parents come first, so the parent's outputs are already in `pieces`
                question, answer = parent
                piece = piece * pieces[question][:, answer:answer + 1]
            pieces.append(piece)
        return torch.cat(pieces, 1)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return self._to_outputs(self._per_question(logits))

    def _squared_errors(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per galaxy: the mean squared error over the answers it has."""
        truth = targets[:, :self.outputs]
        known = torch.isfinite(truth)
        error = torch.where(known, self.predictions(logits) - torch.nan_to_num(truth), 0.0)
        return (error ** 2).sum(1) / known.sum(1).clamp(min=1)

    def _question_ce(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy per question against the volunteers' fractions, weighted by the share of volunteers
        who reached the question (a question few were asked teaches little)."""
        truth = torch.nan_to_num(targets[:, :self.outputs])
        reach: list[torch.Tensor] = []
        total = torch.zeros(len(logits), device=logits.device)
        for (s, e), parent, parent_output in zip(self.slices, self.parent_answers, self.parents):
            answers = truth[:, s:e]
            asked = answers.sum(1)
            if self.tree.cumulative:
                weight = asked  # a cumulative question sums to the share that reached it
            else:
                weight = torch.ones_like(asked) if parent is None else reach[parent[0]] * truth[:, parent_output]
            reach.append(weight)
            share = answers / asked.clamp(min=1e-8).unsqueeze(1)
            log_p = torch.log_softmax(logits[:, s:e].float(), 1)
            total = total + weight * -(share * log_p).sum(1)
        return total

    def _dirichlet_multinomial(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Zoobot's loss: the negative log-likelihood of each question's vote counts under a Dirichlet-
        multinomial with the predicted concentrations (a question nobody answered adds nothing)."""
        counts = targets[:, self.outputs:]
        alpha = self._concentrations(logits)
        total = torch.zeros(len(logits), device=logits.device)
        for s, e in self.slices:
            k, a = counts[:, s:e], alpha[:, s:e]
            n, a_sum = k.sum(1), a.sum(1)
            log_likelihood = (torch.lgamma(n + 1) + torch.lgamma(a_sum) - torch.lgamma(n + a_sum)
                              + (torch.lgamma(k + a) - torch.lgamma(a) - torch.lgamma(k + 1)).sum(1))
            total = total - log_likelihood
        return total

    def loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss, summed over the micro-batch."""
        if self.loss == "question-ce":
            return self._question_ce(logits, targets).sum()
        if self.loss == "dirichlet-multinomial":
            return self._dirichlet_multinomial(logits, targets).sum()
        return self._squared_errors(logits, targets).sum()

    def eval_loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The reported loss: the mean squared error whatever the training loss, so runs compare."""
        return self._squared_errors(logits, targets).sum()

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        """RMSE over the answers the catalogue has; NaN when it has none."""
        measured = answer_errors(predictions, labels[:, :self.outputs])
        return float("nan") if measured is None else measured[0]


    def target_rows(self, dataset: Dataset, frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        return self.target_table(*dataset.answers(frame, self.tree))

    def headline_of(self, predictions: np.ndarray, labels: np.ndarray) -> float | None:
        return errors(predictions, labels[:, :self.outputs])[0]


class Task(Protocol):
    outputs: int
    headline: str               # the figure results lead with: "accuracy", "rmse"
    reports_volunteers: bool

    @property
    def metric(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...
    @property
    def scheduler_mode(self) -> str: ...
    def improved(self, value: float, best: float | None) -> bool: ...
    def batch_weight(self, labels: np.ndarray) -> float: ...
    def targets(self, labels: np.ndarray, device: torch.device) -> torch.Tensor: ...
    def loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...
    def eval_loss_sum(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...
    def predictions(self, logits: torch.Tensor) -> torch.Tensor: ...
    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float: ...
    def target_rows(self, dataset: Dataset, frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray: ...
    def headline_of(self, predictions: np.ndarray, labels: np.ndarray) -> float | None: ...


def task_for(tree: VoteTree | None, num_classes: int, experiment: Experiment, train_labels: np.ndarray) -> Task:
    """The run's task: its decision tree's answers where it has one, else its classes."""
    if tree is not None:
        return VoteFractionTask(tree, experiment.loss)
    return ClassificationTask(num_classes, experiment, train_labels)

