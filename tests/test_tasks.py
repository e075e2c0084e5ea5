"""The task the loop and the worker ask: its loss, its score and which way "best" goes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from galaxy_tui.registry import Experiment
from galaxy_tui.train.tasks import ClassificationTask


def test_classification_scores_accuracy_and_best_goes_up() -> None:
    task = ClassificationTask(3, Experiment(name="t", dataset="d"), np.array([0, 1, 2, 2]))
    predictions = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    assert task.score(predictions, np.array([0, 1, 2])) == pytest.approx(2 / 3)
    assert task.improved(0.5, None) and task.improved(0.6, 0.5) and not task.improved(0.5, 0.5)
    assert not task.improved(float("nan"), None)  # nothing validated is never a best
    assert task.scheduler_mode == "max"


def test_a_task_whose_score_goes_down_reverses_best_and_the_plateau_mode() -> None:
    from galaxy_tui.data.synthetic import SYNTHETIC_TREE
    from galaxy_tui.train.tasks import VoteFractionTask
    task = VoteFractionTask(SYNTHETIC_TREE, "mse")  # judged by RMSE
    assert task.improved(0.2, 0.3) and not task.improved(0.3, 0.2) and task.scheduler_mode == "min"


def test_class_weights_and_smoothing_shape_the_training_loss_not_the_reported_one() -> None:
    labels = np.array([0, 0, 0, 1])
    experiment = Experiment(name="t", dataset="d", sampler="class-weights", label_smoothing=0.1)
    task = ClassificationTask(2, experiment, labels)
    logits, targets = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), task.targets(np.array([0, 1]), torch.device("cpu"))
    weight = torch.tensor([4 / (2 * 3), 4 / (2 * 1)])
    expected = F.cross_entropy(logits, targets, weight=weight, label_smoothing=0.1, reduction="sum")
    assert task.loss_sum(logits, targets).item() == pytest.approx(expected.item())
    assert task.eval_loss_sum(logits, targets).item() == pytest.approx(F.cross_entropy(logits, targets,
                                                                                       reduction="sum").item())
    assert task.batch_weight(np.array([0, 1])) == pytest.approx(float(weight.sum()))
