"""Out-of-sample predictions for every labelled galaxy from k heads fitted on the frozen embedding, one per fold
(scikit-learn). Heads on frozen features, not k networks: a fold costs seconds instead of a training run, so the
job stays a few minutes at 240,000 galaxies. The k heads are also an ensemble for the galaxies no label was given
to: their disagreement is what `label_next` ranks by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MAX_FOLDS = 5


@dataclass(frozen=True)
class FoldPredictions:
    out_of_sample: np.ndarray  # labelled galaxies x outputs: each from the head that never saw it
    members: np.ndarray        # heads x other galaxies x outputs: every head's prediction for the rest


def fold_count(labels: np.ndarray) -> int:
    """Up to five folds, fewer where the rarest class has fewer galaxies (each fold needs one to hold out)."""
    return int(min(MAX_FOLDS, max(2, np.bincount(labels).min())))


def class_heads(features: np.ndarray, labels: np.ndarray, classes: int, others: np.ndarray,
                seed: int = 0) -> FoldPredictions:
    """Class probabilities: a standardised multinomial logistic regression per fold."""
    folds = StratifiedKFold(fold_count(labels), shuffle=True, random_state=seed)
    held = np.zeros((len(labels), classes), dtype=np.float32)
    members = []
    for fit_rows, held_rows in folds.split(features, labels):
        head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))
        head.fit(features[fit_rows], labels[fit_rows])
        seen = head.classes_  # a fold may lack a class: its column stays 0
        held[np.ix_(held_rows, seen)] = head.predict_proba(features[held_rows])
        member = np.zeros((len(others), classes), dtype=np.float32)
        if len(others):
            member[:, seen] = head.predict_proba(others)
        members.append(member)
    return FoldPredictions(held, np.stack(members))


def fraction_heads(features: np.ndarray, targets: np.ndarray, others: np.ndarray,
                   seed: int = 0) -> FoldPredictions:
    """Vote fractions: a ridge regression per fold, clipped to [0, 1]."""
    folds = KFold(MAX_FOLDS if len(targets) >= 2 * MAX_FOLDS else 2, shuffle=True, random_state=seed)
    held = np.zeros(targets.shape, dtype=np.float32)
    # An answer the catalogue lacks for a galaxy (NaN) is fitted as the answer's mean: it pulls no way.
    filled = np.where(np.isnan(targets), np.nanmean(targets, axis=0), targets)
    members = []
    for fit_rows, held_rows in folds.split(features):
        head = make_pipeline(StandardScaler(), Ridge(alpha=10.0))
        head.fit(features[fit_rows], filled[fit_rows])
        held[held_rows] = np.clip(head.predict(features[held_rows]), 0, 1)
        members.append(np.clip(head.predict(others), 0, 1) if len(others)
                       else np.zeros((0, targets.shape[1]), np.float32))
    return FoldPredictions(held, np.stack(members).astype(np.float32))
