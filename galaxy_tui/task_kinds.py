"""What the torch-free side knows of a run's task, said once: how metrics.json names its outputs and its headline
figure, how predictions.csv names its columns, what "best" measures and what the outputs mean. train/tasks.py holds
the torch side (targets, losses, predictions) and names its kind here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskKind:
    name: str              # as experiments.toml's `task` says it
    headline: str          # metrics.json's leading figure
    headline_label: str    # what a person calls it
    validation: str        # the score "best" means (scores.SCORES), for status.json and the runs list
    outputs_key: str       # metrics.json's list of the outputs
    outputs_word: str      # what a person calls the outputs
    predicted_prefix: str  # predictions.csv's column per output
    output_meaning: str
    is_fractions: bool

    @property
    def best_validation(self) -> str:
        """metrics.json's best validation score (best_val_acc, best_val_rmse)."""
        return f"best_{self.validation}"


CLASSIFICATION = TaskKind("classification", "accuracy", "accuracy", "val_acc", "classes", "classes", "p_",
                          "class probabilities (softmax)", False)
VOTE_FRACTIONS = TaskKind("vote-fractions", "rmse", "RMSE", "val_rmse", "outputs", "answers", "pred_",
                          "vote fractions, one per answer", True)
_KINDS = {kind.name: kind for kind in (CLASSIFICATION, VOTE_FRACTIONS)}


def task_kind(name: str | None) -> TaskKind:
    return _KINDS.get(name or CLASSIFICATION.name, CLASSIFICATION)


def kind_of_metrics(metrics: dict[str, Any] | None) -> TaskKind:
    """The task a results/metrics.json was written for (results of older versions say it by their RMSE)."""
    if metrics and (metrics.get("task") == VOTE_FRACTIONS.name or "rmse" in metrics):
        return VOTE_FRACTIONS
    return CLASSIFICATION
