"""The validation scores runs report per epoch, how they are named, and which way is better. Stdlib only:
the worker writes them, the UI and the reports read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    key: str                 # the field in epoch events and metrics.json ("best_" + key)
    label: str               # as shown: "val acc"
    short: str               # in a narrow column: "acc"
    higher_is_better: bool


SCORES = (Score("val_acc", "val accuracy", "acc", True), Score("val_rmse", "val RMSE", "rmse", False))
BY_KEY = {score.key: score for score in SCORES}


def score_named(key: str | None) -> Score:
    """The score of this key; runs from before tasks existed recorded no key and reported accuracy."""
    return BY_KEY.get(key or "val_acc", SCORES[0])


def score_of_epochs(epochs: list[dict[str, Any]]) -> Score:
    """The score a run's epoch events carry."""
    for event in epochs:
        for score in SCORES:
            if event.get(score.key) is not None:
                return score
    return SCORES[0]
