"""Loading a GZ2 Hart16-shaped catalogue (240,000 rows x 230 columns, written here with random values).

Baseline: what a careful script does, pandas.read_csv with usecols= the needed columns (the whole table,
which nobody should read, is printed for scale). Ours: the first load parses the same columns (with
numeric checks) and keeps them in the parsed-column cache; every later load, until the CSV changes,
reads that cache. Each figure is the median of several loads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from timing import timed

from galaxy_tui.data.catalog import read_csv
from galaxy_tui.data.gz2 import HART16_ANSWERS

ROWS = 240_000


def write_table(path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    columns: dict[str, np.ndarray] = {"dr7objid": np.arange(ROWS), "total_classifications": rng.integers(1, 80, ROWS)}
    for question in range(37):
        for family in ("fraction", "weighted_fraction", "debiased", "count", "flag", "debiased_count"):
            columns[f"t{question:02d}_answer_a{question:02d}_{family}"] = rng.random(ROWS).round(3)
    needed = [f"{answer}_debiased" for answer in HART16_ANSWERS.values()]
    for name in needed:
        columns[name] = rng.random(ROWS).round(3)
    pd.DataFrame(columns).to_csv(path, index=False)
    return ["dr7objid", "total_classifications", *needed]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gz2_hart16.csv"
        required = write_table(path)
        cache = Path(tmp) / "cache"
        whole_s, whole = timed(lambda: pd.read_csv(path), 1)
        usecols_s, plain = timed(lambda: pd.read_csv(path, usecols=required)[required], 3)
        first_s, cold = timed(lambda: read_csv(path, "GZ2", required, required[1:], cache_dir=cache), 1)
        warm_s, warm = timed(lambda: read_csv(path, "GZ2", required, required[1:], cache_dir=cache), 5)
        assert warm.equals(plain) and cold.equals(plain) and whole[required].equals(plain)
        size = os.path.getsize(path) / 2**20
    print(f"GZ2-shaped catalogue ({ROWS:,} rows, {whole.shape[1]} columns, {size:.0f} MiB), "
          f"{len(required)} columns needed:")
    print(f"  whole table           {whole_s * 1000:7.0f} ms  (for scale)")
    print(f"  usecols (baseline)    {usecols_s * 1000:7.0f} ms")
    print(f"  ours, first load      {first_s * 1000:7.0f} ms  (parse + checks + write the cache)")
    print(f"  ours, cached          {warm_s * 1000:7.1f} ms  -> {usecols_s / warm_s:.0f}x faster than usecols")


if __name__ == "__main__":
    main()
