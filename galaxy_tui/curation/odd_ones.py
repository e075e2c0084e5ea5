"""The odd ones out: galaxies far from the rest of the embedding. Two scores, each a rank in [0, 1] (1: the
oddest): the distance to the k-th nearest neighbour among a reference sample, and scikit-learn's IsolationForest.
Both read the embedding reduced by PCA to its main directions, where distances are not drowned by the many
features that barely vary; the sample keeps the all-pairs product affordable at 240,000 galaxies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

COMPONENTS = 32
REFERENCE = 20_000
NEIGHBOUR = 10
CHUNK = 4096


def reduced(vectors: np.ndarray, components: int = COMPONENTS, seed: int = 0, fit_rows: int = 50_000) -> np.ndarray:
    """The embedding in its first `components` principal directions (fitted on a sample of rows)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), min(fit_rows, len(vectors)), replace=False))
    pca = PCA(min(components, vectors.shape[1], len(sample)), random_state=seed)
    pca.fit(np.asarray(vectors[sample], dtype=np.float32))
    return np.concatenate([pca.transform(np.asarray(vectors[start:start + CHUNK], dtype=np.float32))
                           for start in range(0, len(vectors), CHUNK)]).astype(np.float32)


def kth_neighbour_distance(points: np.ndarray, k: int = NEIGHBOUR, reference: int = REFERENCE,
                           seed: int = 0) -> np.ndarray:
    """Each point's Euclidean distance to its k-th nearest neighbour among a random reference sample (itself
    left out); k shrinks with the sample so the density it measures is the same."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(points), min(reference, len(points)), replace=False))
    ref = points[chosen]
    k = max(1, min(len(ref) - 1, round(k * len(ref) / len(points)))) if len(ref) < len(points) else min(k, len(ref) - 1)
    ref_norms = (ref ** 2).sum(1)
    position = np.full(len(points), -1)
    position[chosen] = np.arange(len(chosen))
    distances = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), CHUNK):
        block = points[start:start + CHUNK]
        squared = (block ** 2).sum(1)[:, None] + ref_norms[None, :] - 2 * block @ ref.T
        own = position[start:start + CHUNK]
        mine = np.flatnonzero(own >= 0)
        squared[mine, own[mine]] = np.inf
        distances[start:start + CHUNK] = np.sqrt(np.clip(np.partition(squared, k - 1, axis=1)[:, k - 1], 0, None))
    return distances


def odd_ones(ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """id, neighbour (k-th neighbour distance), isolation (IsolationForest's anomaly score), odd (the mean of the
    two as ranks in [0, 1]), oddest first."""
    points = reduced(vectors, seed=seed)
    neighbour = kth_neighbour_distance(points, seed=seed)
    forest = IsolationForest(n_estimators=200, max_samples=min(2048, len(points)), random_state=seed, n_jobs=1)
    isolation = -forest.fit(points).score_samples(points)
    odd = (rankdata(neighbour) + rankdata(isolation)) / (2 * len(points))
    frame = pd.DataFrame({"id": ids, "neighbour": np.round(neighbour, 5), "isolation": np.round(isolation, 5),
                          "odd": np.round(odd, 5)})
    frame = frame.sort_values("odd", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame
