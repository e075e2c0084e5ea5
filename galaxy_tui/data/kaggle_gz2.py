"""The Kaggle Galaxy Zoo challenge: 37 cumulative vote-fraction targets + <GalaxyID>.jpg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset, ensure_not_empty, file_signature, fingerprint_of, read_csv
from galaxy_tui.data.gz2 import FolderImages, attach_images
from galaxy_tui.data.labels import VOTE_CLASSES

# Answers per question of the decision tree, as the challenge numbers them.
QUESTION_ANSWERS = {1: 3, 2: 2, 3: 2, 4: 2, 5: 4, 6: 2, 7: 3, 8: 7, 9: 3, 10: 3, 11: 6}
TARGET_COLUMNS: tuple[str, ...] = tuple(f"Class{q}.{a}" for q, n in QUESTION_ANSWERS.items()
                                        for a in range(1, n + 1))


def _per_question(frame: pd.DataFrame, question: int) -> np.ndarray:
    """Fractions of one question normalised to sum to 1 (the challenge's columns are cumulative)."""
    columns = [f"Class{question}.{a}" for a in range(1, QUESTION_ANSWERS[question] + 1)]
    values = frame[columns].to_numpy(dtype=np.float64)
    total = values.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, values / total, np.nan)


def kaggle_votes(frame: pd.DataFrame) -> pd.DataFrame:
    """The labelling rule's inputs from the 37 targets. No per-galaxy vote counts exist in this set."""
    q1, q2, q4 = _per_question(frame, 1), _per_question(frame, 2), _per_question(frame, 4)
    return pd.DataFrame({
        "smooth": q1[:, 0], "disk": q1[:, 1], "artifact": q1[:, 2],
        "edgeon_yes": q2[:, 0], "edgeon_no": q2[:, 1], "spiral": q4[:, 0],
        "total_classifications": np.nan,
    }, index=frame.index).astype(np.float32)


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
                   location=str(solutions))
