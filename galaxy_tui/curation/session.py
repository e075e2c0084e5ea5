"""A curated run as the workbench browses it: its dataset (for the pictures), its lists, its embedding (for
similar galaxies) and the dataset's overrides file, where the person's decisions go. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import read_json
from galaxy_tui.curation.embedding import Embedding, curation_folder, read_embedding, unit_rows
from galaxy_tui.curation.files import LABEL_ISSUES, LABEL_NEXT, MAP, ODD_ONES, SUMMARY, read_ranking
from galaxy_tui.curation.similar import nearest
from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.overrides import overrides_file, read_overrides, record_decision
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_frozen

LISTS = {"issues": LABEL_ISSUES, "next": LABEL_NEXT, "odd": ODD_ONES}


@dataclass
class CurationSession:
    run_id: str
    dataset: Dataset
    embedding: Embedding
    lists: dict[str, pd.DataFrame]
    overrides_path: Path
    is_fractions: bool
    layout: pd.DataFrame  # the map: x, y, id
    layout_kind: str      # pca | umap

    def __post_init__(self) -> None:
        ids = self.dataset.frame["id"].astype(str)
        self._rows = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
        self._labels = self.embedding.galaxies.set_index("id")["label"]

    def dataset_row(self, galaxy_id: str) -> int | None:
        row = self._rows.get(str(galaxy_id))
        return None if row is None else int(row)

    def label_of(self, galaxy_id: str) -> str:
        return str(self._labels.get(str(galaxy_id), ""))

    def decisions(self) -> dict[str, tuple[str, str]]:
        """The standing decision for each galaxy that has one: (action, new label)."""
        standing = read_overrides(self.overrides_path)
        if standing is None:
            return {}
        return {str(i): (str(a), str(n)) for i, a, n in standing.decisions[["id", "action", "new_label"]].itertuples(
            index=False)}

    def decide(self, galaxy_id: str, action: str, new_label: str = "", note: str = "") -> None:
        record_decision(self.overrides_path, galaxy_id, action, new_label, note or f"from run {self.run_id}")

    def similar(self, galaxy_id: str, k: int = 24) -> pd.DataFrame:
        """id, similarity, part, label of the k galaxies most like this one, most similar first."""
        row = self.embedding.row_of(galaxy_id)
        return self._nearest(np.asarray(self.embedding.vectors[row], np.float32), k, np.array([row]))

    def similar_to(self, features: np.ndarray, k: int = 24) -> pd.DataFrame:
        """The same for an image outside the embedding, from its penultimate features (a predict job's)."""
        return self._nearest(unit_rows(features[None])[0].astype(np.float32), k, None)

    def _nearest(self, query: np.ndarray, k: int, skip: np.ndarray | None) -> pd.DataFrame:
        found, sims = nearest(self.embedding.vectors, query, k, skip)
        return self.embedding.galaxies.iloc[found[0]][["id", "part", "label"]].assign(
            similarity=np.round(sims[0], 4)).reset_index(drop=True)


def open_session(run_dir: Path) -> CurationSession:
    """The curated run's session; a GalaxyError saying how to curate it when it has no lists."""
    folder = curation_folder(run_dir)
    lists = {name: read_ranking(folder, file) for name, file in LISTS.items()}
    if any(frame is None for frame in lists.values()):
        raise GalaxyError(f"run {run_dir.name} has no curation lists yet; make them with `galaxy-tui curate "
                          f"{run_dir.name}` (or `u` again, to start it here).")
    frozen = read_frozen(run_dir)
    dataset = load_dataset(frozen.dataset, frozen.cache_dir)
    layout = read_ranking(folder, MAP)
    summary = read_json(folder / SUMMARY) or {}
    return CurationSession(run_dir.name, dataset, read_embedding(run_dir),
                           {name: frame for name, frame in lists.items() if frame is not None},
                           overrides_file(frozen.workspace, dataset.name), frozen.is_fractions,
                           layout if layout is not None else pd.DataFrame({"x": [], "y": [], "id": []}),
                           str(summary.get("map", "pca")).upper())
