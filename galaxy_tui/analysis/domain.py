"""What a run's training galaxies look like to its own network, and how far a new image lies from them.

The penultimate features of the training galaxies, each read as its direction and the logarithm of its length, are
summarised as one Gaussian per class (per class label for a classification run, one for a vote-fraction run) sharing
a Ledoit-Wolf covariance: the distance of an image is its smallest Mahalanobis distance to a class (Lee et al. 2018).
Measured against the raw features, the direction alone, the k-th nearest neighbour and the largest softmax
probability on the demo and on real SDSS galaxies (bench/bench_domain.py), it was the one that held for a
well-trained model, a barely trained one and one trained on a hundred real galaxies; and it keeps only a mean per
class and a D x D matrix, not the training features themselves.

The validation galaxies (never trained on) set the scale: an image's in-domain score is the share of validation
galaxies at least as far out as it is (about uniform on galaxies like the training ones), and it is flagged
"unlike the training galaxies" beyond the validation galaxies' 99th percentile."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_tui.atomic import atomic_write
from galaxy_tui.errors import GalaxyError

FLAG_QUANTILE = 0.99
METHOD = ("class-conditional Mahalanobis distance (Ledoit-Wolf covariance) on the penultimate features' direction and "
          "log length")
UNLIKE = "unlike the training galaxies"
FILE = "domain.npz"
VERSION = 1  # how features are described; a record of another version is not read


@dataclass(frozen=True)
class Domain:
    means: np.ndarray       # classes x D: each class's mean feature
    whitening: np.ndarray   # D x D lower triangle L of the shared precision (L L^T): distance = |(z - mean) L|^2
    reference: np.ndarray   # the validation galaxies' distances, sorted
    threshold: float        # flagged beyond this distance
    fitted_on: int          # training galaxies summarised

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Each row's smallest squared Mahalanobis distance to a class."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2 or features.shape[1] + 1 != self.means.shape[1]:
            raise GalaxyError(f"features of {features.shape[-1]} dimensions, but the run's record of its training "
                              f"galaxies has {self.means.shape[1] - 1}: evaluate the run again")
        whitened, centres = described(features) @ self.whitening, self.means @ self.whitening
        return np.min(((whitened[:, None, :] - centres[None, :, :]) ** 2).sum(-1), axis=1)

    def in_domain(self, distances: np.ndarray) -> np.ndarray:
        """The share of validation galaxies at least as far out: 1 = the most ordinary, 0 = beyond them all."""
        farther = len(self.reference) - np.searchsorted(self.reference, distances, side="left")
        return farther / max(len(self.reference), 1)

    def flagged(self, distances: np.ndarray) -> np.ndarray:
        return np.asarray(distances) > self.threshold

    def save(self, path: Path) -> None:
        atomic_write(path, lambda handle: np.savez(
            handle, means=self.means.astype(np.float32), whitening=self.whitening.astype(np.float32),
            reference=self.reference.astype(np.float32), threshold=self.threshold, fitted_on=self.fitted_on,
            version=VERSION))


def described(features: np.ndarray) -> np.ndarray:
    """Each feature vector as its direction and its log length: the direction alone misses how strongly a network
    responds, the raw vector lets the length (large for some unfamiliar images) swamp the direction."""
    length = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return np.concatenate([features / length, np.log(length)], axis=1)


def fit_domain(train: np.ndarray, groups: np.ndarray, validation: np.ndarray) -> Domain:
    """The training features' classes (`groups`: a class per row, or one group for all) and the validation
    galaxies' distances that set the flag."""
    from sklearn.covariance import LedoitWolf  # only the evaluating worker fits; the UI only reads the constants

    if len(train) < 2 or not len(validation):
        raise GalaxyError(f"too few galaxies to describe the training galaxies ({len(train)} training, "
                          f"{len(validation)} validation)")
    train = described(np.asarray(train, np.float64))
    labels, index = np.unique(groups, return_inverse=True)
    means = np.stack([train[index == k].mean(0) for k in range(len(labels))])
    precision = LedoitWolf().fit(train - means[index]).precision_
    whitening = np.linalg.cholesky((precision + precision.T) / 2)
    partial = Domain(means, whitening, np.zeros(0), np.inf, len(train))
    reference = np.sort(partial.distances(validation))
    threshold = float(np.quantile(reference, FLAG_QUANTILE))
    return Domain(means, whitening, reference, threshold, len(train))


def read_domain(path: Path, features: int) -> Domain | None:
    """A run's saved record for a network of `features` penultimate features, or None where the run was evaluated
    before it kept one (or by a version that described features differently), or the file is damaged."""
    try:
        with np.load(path) as saved:
            if int(saved["version"]) != VERSION or saved["means"].shape[1] != features + 1 \
                    or saved["whitening"].shape != (features + 1, features + 1):
                return None
            return Domain(saved["means"].astype(np.float64), saved["whitening"].astype(np.float64),
                          saved["reference"].astype(np.float64), float(saved["threshold"]), int(saved["fitted_on"]))
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile):
        return None


def domain_summary(domain: Domain, measured: str, flagged_share: float) -> dict[str, object]:
    """metrics.json's record of the check: what it is and how often it fires on the run's own held-out galaxies."""
    return {"method": METHOD, "flag_quantile": FLAG_QUANTILE, "training_galaxies": domain.fitted_on,
            "validation_galaxies": int(len(domain.reference)), "part": measured,
            "flagged": round(float(flagged_share), 5)}


def domain_note(metrics: dict[str, object] | None) -> str | None:
    """How often the check flagged the run's own held-out galaxies, as a figure line says it."""
    recorded = (metrics or {}).get("domain")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("flagged"), (int, float)):
        return None
    return f"{recorded['flagged']:.1%} of the {recorded.get('part', 'test')} galaxies {UNLIKE}"
