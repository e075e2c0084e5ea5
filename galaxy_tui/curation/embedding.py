"""A run's embedding on disk: `RUN/curation/embedding.npy` (galaxies x features, float16, each row scaled to
unit length, so a dot product is the cosine similarity) and `galaxies.csv` (row, id, part, label) beside it.
At 512 features, 240,000 galaxies take 246 MB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.errors import GalaxyError

FOLDER = "curation"
EMBEDDING = "embedding.npy"
MORPHOLOGY = "morphology.npy"  # galaxies x morphology.STATISTICS, float32, in the embedding's order
GALAXIES = "galaxies.csv"
LEFT_OUT = "left-out"  # the part of galaxies the labelling rule gave no class


def curation_folder(run_dir: Path) -> Path:
    return run_dir / FOLDER


def unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float16."""
    values = np.asarray(values, dtype=np.float32)
    lengths = np.linalg.norm(values, axis=1, keepdims=True)
    return (values / np.maximum(lengths, 1e-12)).astype(np.float16)


@dataclass(frozen=True)
class Embedding:
    vectors: np.ndarray      # galaxies x features, float16 unit rows (memory-mapped)
    galaxies: pd.DataFrame   # row, id, part (train | val | test | left-out), label ("" where none)

    @property
    def ids(self) -> np.ndarray:
        return self.galaxies["id"].to_numpy(dtype=str)

    def row_of(self, galaxy_id: str) -> int:
        found = np.flatnonzero(self.ids == str(galaxy_id))
        if not len(found):
            raise GalaxyError(f"galaxy {galaxy_id!r} is not in this run's embedding ({len(self.ids)} galaxies); "
                              f"give an id from its dataset, or an image file.")
        return int(found[0])


def read_embedding(run_dir: Path) -> Embedding:
    """The run's embedding, memory-mapped; a GalaxyError saying how to make it when there is none."""
    folder = curation_folder(run_dir)
    if not (folder / EMBEDDING).exists() or not (folder / GALAXIES).exists():
        raise GalaxyError(f"run {run_dir.name} has no embedding yet; make it with `galaxy-tui curate {run_dir.name}` "
                          f"(or `c` on the run in the Runs pane).")
    vectors = np.load(folder / EMBEDDING, mmap_mode="r")
    galaxies = pd.read_csv(folder / GALAXIES, dtype={"id": str, "label": str, "part": str},
                           keep_default_na=False)
    if len(galaxies) != len(vectors):
        raise GalaxyError(f"{folder}: {GALAXIES} lists {len(galaxies)} galaxies but {EMBEDDING} holds "
                          f"{len(vectors)}; make it again with `galaxy-tui curate {run_dir.name} --again`.")
    return Embedding(vectors, galaxies)
