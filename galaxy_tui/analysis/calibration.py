"""Does a confidence of 0.9 mean right nine times in ten? Reliability bins, the expected calibration error,
and temperature scaling (one number fitted on validation that softens or sharpens every probability)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.metrics import log_loss

BINS = 10
_FLOOR = 1e-12  # probabilities written rounded can be 0: their log must stay finite


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities of logits divided by `temperature`. Log-probabilities are the logits up to a
    per-row constant, which a softmax ignores, so saved probabilities are enough."""
    return np.exp(log_softmax(np.log(np.maximum(probabilities, _FLOOR)) / temperature, axis=1))


def mean_log_loss(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The negative log-likelihood of the true classes (the loss a result reports). Rows are renormalised
    first: probabilities read back from files were rounded, so their sums are off by a few 1e-5."""
    rows = probabilities / probabilities.sum(axis=1, keepdims=True)
    return float(log_loss(truth, rows, labels=range(probabilities.shape[1])))


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The temperature (0.05 to 20) that minimises the negative log-likelihood of `truth`."""
    found = minimize_scalar(lambda log_t: mean_log_loss(scaled(probabilities, float(np.exp(log_t))), truth),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    confidence: float  # mean confidence of its galaxies (NaN when empty)
    accuracy: float


def reliability(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> list[Bin]:
    """Galaxies grouped by their top probability into equal-width bins: how sure, and how often right."""
    confidence = probabilities.max(1)
    right = probabilities.argmax(1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    where = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    result = []
    for b in range(bins):
        members = where == b
        count = int(members.sum())
        result.append(Bin(float(edges[b]), float(edges[b + 1]), count,
                          float(confidence[members].mean()) if count else float("nan"),
                          float(right[members].mean()) if count else float("nan")))
    return result


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> float:
    """The gap between confidence and accuracy, averaged over the bins weighted by their galaxies."""
    total = len(truth)
    return float(sum(b.count / total * abs(b.confidence - b.accuracy) for b in reliability(probabilities, truth, bins)
                     if b.count)) if total else float("nan")


def bins_as_json(bins: list[Bin]) -> list[dict[str, float | int | None]]:
    return [{"low": round(b.low, 3), "high": round(b.high, 3), "count": b.count,
             "confidence": None if not b.count else round(b.confidence, 4),
             "accuracy": None if not b.count else round(b.accuracy, 4)} for b in bins]


@dataclass(frozen=True)
class Calibration:
    """Temperature fitted on validation; ECE before and after on validation and on the measured galaxies."""
    temperature: float
    val_before: float
    val_after: float
    before: float
    after: float
    bins_before: list[Bin]
    bins_after: list[Bin]
    val_nll_before: float
    val_nll_after: float

    def as_json(self) -> dict[str, object]:
        return {"temperature": round(self.temperature, 4), "fitted_by": "validation log-loss", "bins": BINS,
                "val_nll_before": round(self.val_nll_before, 5), "val_nll_after": round(self.val_nll_after, 5),
                "val_ece_before": round(self.val_before, 5),
                "val_ece_after": round(self.val_after, 5), "ece_before": round(self.before, 5),
                "ece_after": round(self.after, 5), "reliability_before": bins_as_json(self.bins_before),
                "reliability_after": bins_as_json(self.bins_after)}


def calibrate(val_probabilities: np.ndarray, val_truth: np.ndarray, probabilities: np.ndarray,
              truth: np.ndarray) -> tuple[Calibration, np.ndarray]:
    """Fit on validation, apply to the measured galaxies: the figures and the calibrated probabilities. The
    temperature minimises the validation log-loss (the standard fit); it stays 1 only where that loss does not
    fall. The binned calibration error is reported, not used to choose: on a few hundred galaxies its ten bins
    are too noisy to judge by (it kept the worst-calibrated model at 1)."""
    temperature = fit_temperature(val_probabilities, val_truth)
    nll_before = mean_log_loss(val_probabilities, val_truth)
    nll_after = mean_log_loss(scaled(val_probabilities, temperature), val_truth)
    if not nll_after < nll_before:
        temperature, nll_after = 1.0, nll_before
    calibrated = scaled(probabilities, temperature)
    figures = Calibration(
        temperature, expected_calibration_error(val_probabilities, val_truth),
        expected_calibration_error(scaled(val_probabilities, temperature), val_truth),
        expected_calibration_error(probabilities, truth), expected_calibration_error(calibrated, truth),
        reliability(probabilities, truth), reliability(calibrated, truth), nll_before, nll_after)
    return figures, calibrated
