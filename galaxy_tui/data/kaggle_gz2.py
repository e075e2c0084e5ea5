"""The Kaggle Galaxy Zoo challenge: 37 cumulative vote-fraction targets + <GalaxyID>.jpg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset, ensure_not_empty, file_signature, fingerprint_of, read_csv
from galaxy_tui.data.gz2 import FolderImages, attach_images
from galaxy_tui.data.labels import VOTE_CLASSES
from galaxy_tui.data.vote_tree import KAGGLE_TREE

TARGET_COLUMNS: tuple[str, ...] = tuple(KAGGLE_TREE.columns)


def kaggle_votes(frame: pd.DataFrame) -> pd.DataFrame:
    """The labelling rule's inputs from the 37 targets, question by question (each question's answers
    normalised to sum to 1). No per-galaxy vote counts exist in this set."""
    fractions = KAGGLE_TREE.rule_fractions(frame[list(TARGET_COLUMNS)].to_numpy(dtype=np.float64))
    assert fractions is not None  # the full tree has every question the rule reads
    return pd.DataFrame({**fractions, "total_classifications": np.nan}, index=frame.index).astype(np.float32)


def load_kaggle_gz2(name: str, solutions: Path, images: Path, cache_dir: Path | None = None) -> Dataset:
    table = read_csv(solutions, "Kaggle GZ2 solutions", ["GalaxyID", *TARGET_COLUMNS], numeric=TARGET_COLUMNS,
                     cache_dir=cache_dir)
    frame = pd.concat([
        pd.DataFrame({"id": table["GalaxyID"].astype(str), "ref": table["GalaxyID"].astype(str) + ".jpg"}),
        kaggle_votes(table),
        table[list(TARGET_COLUMNS)].astype(np.float32),
    ], axis=1)
    frame, problems, signature = attach_images(frame, images, str(solutions))
    ensure_not_empty(frame, str(solutions))
    return Dataset(name, "kaggle-gz2", frame, VOTE_CLASSES, FolderImages(images),
                   fingerprint_of("kaggle-gz2", file_signature(solutions), signature), problems,
                   location=str(solutions), tree=KAGGLE_TREE)
