"""At evaluation: describe the training galaxies as the best model sees them (analysis/domain.py), keep the record in
results/domain.npz for predict and serve, and measure how often it flags the run's own held-out galaxies."""

from __future__ import annotations

from typing import Any

import numpy as np

from galaxy_tui.analysis.domain import FILE, domain_summary, fit_domain
from galaxy_tui.errors import GalaxyError
from galaxy_tui.train.attempt import Attempt, Prepared
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.penultimate import penultimate

TRAINING_SAMPLE = 20_000  # enough for a 2048-wide covariance; a full GZ2 train split would add most of an epoch


def _sample(split: Split, seed: int) -> Split:
    if len(split.indices) <= TRAINING_SAMPLE:
        return split
    rows = np.sort(np.random.default_rng(seed).choice(len(split.indices), TRAINING_SAMPLE, replace=False))
    return Split(split.indices[rows], split.labels[rows])


def record_domain(attempt: Attempt, prepared: Prepared, trainer: Trainer, measured: str,
                  held_out: Split) -> dict[str, Any] | None:
    """metrics.json's `domain` entry; None (with a warning in the run's events) where the run has too few
    galaxies to describe."""
    attempt.state("evaluating", message="describing the training galaxies for the in-domain check")
    train = _sample(prepared.splits["train"], attempt.exp.seed)
    # A classification run has a Gaussian per class; a vote-fraction run's labels are fractions: one for all.
    groups = train.labels if train.labels.ndim == 1 else np.zeros(len(train.indices), np.int64)
    try:
        domain = fit_domain(penultimate(trainer, train, "training"), groups,
                            penultimate(trainer, prepared.splits["val"], "validation"))
    except GalaxyError as exc:
        attempt.emit("warning", message=f"no in-domain check for this run: {exc}")
        return None
    domain.save(attempt.run_dir / "results" / FILE)
    flagged = domain.flagged(domain.distances(penultimate(trainer, held_out, measured))).mean()
    return domain_summary(domain, measured, float(flagged))
