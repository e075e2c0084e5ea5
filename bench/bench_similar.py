"""Similar galaxies, one query against 240,000 galaxies of 512 features stored as float16 (246 MB, the size a
full GZ2 embedding takes): ours (an exact matrix product over the float16 rows in chunks, no index to build)
side by side with scikit-learn's NearestNeighbors (brute force, cosine) and, where faiss-cpu is installed, faiss's
exact float16 index (IndexScalarQuantizer QT_fp16, inner product). All three must return the same neighbours.
Printed: the time to build (an index, or nothing), the time of one query (median of several), and the ratios.

    python bench/bench_similar.py                   # about 30 s on 2 cores
    python bench/bench_similar.py --galaxies 20000  # smaller
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors
from timing import timed

from galaxy_tui.curation.embedding import unit_rows
from galaxy_tui.curation.similar import nearest

K = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--galaxies", type=int, default=240_000)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Clustered like an embedding (galaxies of a kind sit together), not uniform noise.
    centres = rng.standard_normal((50, args.features)).astype(np.float32)
    vectors = unit_rows(centres[rng.integers(0, 50, args.galaxies)]
                        + 0.7 * rng.standard_normal((args.galaxies, args.features)).astype(np.float32))
    query_row = 12_345 % args.galaxies
    query = vectors[query_row].astype(np.float32)
    print(f"{args.galaxies} galaxies x {args.features} features, float16: {vectors.nbytes / 1e6:.0f} MB; "
          f"one query, {K} neighbours; median of {args.repeats}")
    rows: list[tuple[str, float, float, np.ndarray]] = []
    ours_s, ours = timed(lambda: nearest(vectors, query, K + 1)[0][0], args.repeats)
    rows.append(("ours: chunked float16 product", 0.0, ours_s, ours))
    started = time.perf_counter()
    index = NearestNeighbors(n_neighbors=K + 1, metric="cosine", algorithm="brute").fit(vectors)
    built = time.perf_counter() - started
    sk_s, sk = timed(lambda: index.kneighbors(query[None])[1][0], max(1, args.repeats // 2))
    rows.append(("scikit-learn NearestNeighbors (brute)", built, sk_s, sk))
    try:
        import faiss
    except ImportError:
        print("faiss-cpu is not installed: its row is left out")
    else:
        started = time.perf_counter()
        flat = faiss.IndexScalarQuantizer(args.features, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for start in range(0, len(vectors), 32_768):
            flat.add(np.asarray(vectors[start:start + 32_768], np.float32))
        built = time.perf_counter() - started
        faiss_s, found = timed(lambda: flat.search(query[None], K + 1)[1][0], args.repeats)
        rows.append(("faiss IndexScalarQuantizer fp16", built, faiss_s, found))
    print(f"{'':<40} {'build s':>8} {'query s':>8} {'ours faster x':>14} {'same neighbours':>16}")
    for name, build, query_s, found in rows:
        same = len(set(found.tolist()) & set(ours.tolist())) / len(ours)
        print(f"{name:<40} {build:>8.3f} {query_s:>8.3f} {query_s / ours_s:>14.1f} {same:>16.0%}")
    print(f"a session's first query, build included: ours {ours_s:.3f} s; "
          + "; ".join(f"{name.split()[0]} {build + query_s:.3f} s" for name, build, query_s, _ in rows[1:]))


if __name__ == "__main__":
    main()
