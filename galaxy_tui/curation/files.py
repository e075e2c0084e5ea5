"""The files a curate job writes in `RUN/curation/` beside the embedding, and reading one of its lists back
(light: the workbench reads them without the libraries that made them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

LABEL_ISSUES = "label_issues.csv"
LABEL_NEXT = "label_next.csv"
ODD_ONES = "odd_ones.csv"
MAP = "map.csv"
SUMMARY = "summary.json"


def read_ranking(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / name
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
