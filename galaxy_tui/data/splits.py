"""Stratified, seeded train/val/test splits, saved as a CSV of ids so a run can be reproduced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def _allocate(indices: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    shuffled = rng.permutation(indices)
    bounds = np.round(np.cumsum(fractions)[:-1] * len(shuffled)).astype(int)
    return np.split(shuffled, bounds)


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float], seed: int,
                     fixed: np.ndarray | None = None) -> np.ndarray:
    """'train' / 'val' / 'test' per row, stratified by label within each class.

    `fixed` carries a source's own split ('train'/'test'): its test rows stay test, and val is
    carved out of its train rows in the proportion val : train.
    """
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=object)
    if fixed is not None:
        assignment[fixed == "test"] = "test"
        val_share = fractions[1] / (fractions[0] + fractions[1])
        pool_fractions: tuple[float, ...] = (1 - val_share, val_share)
        pool_names: tuple[str, ...] = ("train", "val")
        pool = fixed != "test"
    else:
        pool_fractions, pool_names, pool = fractions, SPLITS, np.ones(len(labels), dtype=bool)
    for label in np.unique(labels[pool]):
        members = np.flatnonzero(pool & (labels == label))
        for name, chosen in zip(pool_names, _allocate(members, pool_fractions, rng)):
            assignment[chosen] = name
    return assignment


def write_split(path: Path, ids: pd.Series, assignment: np.ndarray) -> None:
    pd.DataFrame({"id": ids.to_numpy(), "split": assignment}).to_csv(path, index=False)


def read_split(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str, "split": str})
