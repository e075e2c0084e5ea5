"""Loading a GZ2 Hart16-shaped catalogue (240,000 rows x 230 columns, written here with random values):
ours parses only the columns the labelling needs; the baseline is a plain pandas.read_csv of the table.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

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
        start = time.perf_counter()
        ours = read_csv(path, "GZ2 Hart16 catalogue", required)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        whole = pd.read_csv(path)
        whole_s = time.perf_counter() - start
        assert ours.equals(whole[required])
        size = os.path.getsize(path) / 2**20
    print(f"GZ2-shaped catalogue ({ROWS:,} rows, {whole.shape[1]} columns, {size:.0f} MiB): needed columns "
          f"{ours_s:.2f} s, whole table {whole_s:.2f} s, ratio {whole_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
