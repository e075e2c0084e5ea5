"""Exact nearest neighbours by cosine similarity: a matrix product over the embedding in chunks, so that a
float16 embedding of any size is read once, a chunk at a time in float32, without a second copy in memory
(bench/bench_similar.py measures it beside scikit-learn's NearestNeighbors and faiss)."""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 32_768


def nearest(vectors: np.ndarray, queries: np.ndarray, k: int, skip_self: np.ndarray | None = None,
            chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k most similar galaxies for each query (queries x k, most similar first) and their
    similarities. `vectors` and `queries` are unit rows; `skip_self[q]` is a row never returned for query q
    (the galaxy itself), or -1."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    k = min(k, len(vectors) - (0 if skip_self is None else 1))
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    best_sims = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(vectors), chunk_rows):
        sims = np.asarray(vectors[start:start + chunk_rows], dtype=np.float32) @ queries.T  # chunk x queries
        sims = sims.T
        if skip_self is not None:
            inside = (skip_self >= start) & (skip_self < start + sims.shape[1])
            sims[np.flatnonzero(inside), skip_self[inside] - start] = -np.inf
        take = min(k, sims.shape[1])
        top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        best_rows = np.concatenate([best_rows, top + start], axis=1)
        best_sims = np.concatenate([best_sims, np.take_along_axis(sims, top, axis=1)], axis=1)
        if best_rows.shape[1] > k:
            keep = np.argpartition(-best_sims, k - 1, axis=1)[:, :k]
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
            best_sims = np.take_along_axis(best_sims, keep, axis=1)
    order = np.argsort(-best_sims, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1), np.take_along_axis(best_sims, order, axis=1)
