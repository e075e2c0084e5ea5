"""Exact nearest neighbours by cosine similarity: a matrix product over the embedding in chunks, each chunk
widened from float16 into one reused float32 buffer, so that an embedding of any size is read once without a
second copy in memory (bench/bench_similar.py measures it beside scikit-learn's NearestNeighbors and faiss)."""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 4096  # a chunk's float32 copy stays in the CPU's cache (8 MB at 512 features)


def nearest(vectors: np.ndarray, queries: np.ndarray, k: int, skip_self: np.ndarray | None = None,
            chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k most similar galaxies for each query (queries x k, most similar first) and their
    similarities. `vectors` and `queries` are unit rows; `skip_self[q]` is a row never returned for query q
    (the galaxy itself)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    k = max(0, min(k, len(vectors) - (0 if skip_self is None else 1)))
    sims = np.empty((len(vectors), len(queries)), dtype=np.float32)
    buffer = np.empty((min(chunk_rows, len(vectors)), vectors.shape[1]), dtype=np.float32)
    single = queries[0] if len(queries) == 1 else None  # one query: a matrix-vector product, BLAS's faster path
    for start in range(0, len(vectors), chunk_rows):
        rows = min(chunk_rows, len(vectors) - start)
        np.copyto(buffer[:rows], vectors[start:start + rows])
        if single is not None:
            np.dot(buffer[:rows], single, out=sims[start:start + rows, 0])
        else:
            np.dot(buffer[:rows], queries.T, out=sims[start:start + rows])
    sims = sims.T  # queries x galaxies
    if skip_self is not None:
        sims[np.arange(len(queries)), skip_self] = -np.inf
    if k == 0:
        return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)
