"""The odd ones out: galaxies far from the rest, seen two ways at once. The run's embedding (what its model learnt),
in its first 16 principal directions scaled to unit variance (whitened: a direction the classes barely use counts as
much as the one that separates them), beside the galaxies' morphology statistics where the job measured them
(curation.morphology: what the model may have folded into its classes — a ring, a second nucleus), robustly scaled
(median and interquartile range, then logarithmic tails) so one long-tailed statistic does not decide alone. In that
space: the distance to the k-th nearest neighbour among a reference sample (`odd` is its rank, in [0, 1]; it found
the planted rare galaxies best, see bench/bench_curation.py) and scikit-learn's IsolationForest, kept beside it.
The sample keeps the all-pairs product affordable at 240,000 galaxies. Each galaxy's list entry also names the
statistic it is rarest in, so the list says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import RobustScaler, StandardScaler

from galaxy_tui.curation.morphology import STATISTICS

COMPONENTS = 16
REFERENCE = 20_000
NEIGHBOUR = 10
CHUNK = 4096
STANDS_OUT = 0.01  # a statistic in which at most this share of the galaxies lie as far out is named


def reduced(vectors: np.ndarray, components: int = COMPONENTS, seed: int = 0, fit_rows: int = 50_000) -> np.ndarray:
    """The embedding in its first `components` principal directions, each scaled to unit variance (fitted on a
    sample of rows)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), min(fit_rows, len(vectors)), replace=False))
    pca = PCA(min(components, vectors.shape[1], len(sample)), whiten=True, random_state=seed)
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


def scaled_statistics(statistics: np.ndarray) -> np.ndarray:
    """Morphology statistics on a common scale: robust (median, IQR), tails compressed, then unit variance; a
    statistic that could not be measured sits at the median."""
    filled = np.where(np.isfinite(statistics), statistics, np.nanmedian(statistics, axis=0))
    robust = RobustScaler().fit_transform(np.nan_to_num(filled))
    return StandardScaler().fit_transform(np.sign(robust) * np.log1p(np.abs(robust))).astype(np.float32)


def standing_out(statistics: np.ndarray, rarer_than: float = STANDS_OUT) -> np.ndarray:
    """Per galaxy, the statistic in which it is rarest, with its direction ("ring_rise ↑", "size ↓"): the one where
    the fewest galaxies lie as far out or further (a share of the galaxies, not standard deviations: a statistic
    that most galaxies have at zero, like a second nucleus, would make any value look extreme). Blank where none is
    as rare as `rarer_than` (the embedding, what the model learnt, put it far out)."""
    filled = np.where(np.isfinite(statistics), statistics, np.nanmedian(statistics, axis=0))
    count = len(filled)
    at_or_above = (count - rankdata(filled, method="min", axis=0) + 1) / count
    at_or_below = rankdata(filled, method="max", axis=0) / count
    below = at_or_below < at_or_above
    share = np.where(below, at_or_below, at_or_above)
    rarest = share.argmin(axis=1)
    rows = np.arange(count)
    named = np.array([f"{name} {'↓' if low else '↑'}" for name, low in
                      zip(np.array(STATISTICS)[rarest], below[rows, rarest])], dtype=object)
    return np.where(share[rows, rarest] <= rarer_than, named, "")


def odd_ones(ids: np.ndarray, vectors: np.ndarray, seed: int = 0, statistics: np.ndarray | None = None
             ) -> pd.DataFrame:
    """id, neighbour (the k-th neighbour distance), isolation (IsolationForest's anomaly score), odd (the
    neighbour distance's rank in [0, 1]), then, where the statistics are given, stands_out (the statistic each
    galaxy is rarest in, `standing_out`) and the statistics; oddest first."""
    points = reduced(vectors, seed=seed)
    if statistics is not None:
        points = np.concatenate([points, scaled_statistics(statistics)], axis=1)
    neighbour = kth_neighbour_distance(points, seed=seed)
    forest = IsolationForest(n_estimators=200, max_samples=min(2048, len(points)), random_state=seed, n_jobs=1)
    isolation = -forest.fit(points).score_samples(points)
    frame = pd.DataFrame({"id": ids, "neighbour": np.round(neighbour, 5), "isolation": np.round(isolation, 5),
                          "odd": np.round(rankdata(neighbour) / len(ids), 5)})
    if statistics is not None:
        frame["stands_out"] = standing_out(statistics)
        frame = frame.join(pd.DataFrame(np.round(statistics, 4), columns=list(STATISTICS)))
    frame = frame.sort_values("odd", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame
