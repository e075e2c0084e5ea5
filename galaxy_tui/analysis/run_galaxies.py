"""The galaxies behind a finished run, read again from its frozen configuration and split.csv: what a result
derived from the run without its network (an ensemble) needs to write its artefacts like the run did."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.overrides import RUN_COPY, read_overrides
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.data.splits import LabelledSplit, labelled_split
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.registry import Experiment
from galaxy_tui.runs import RunInfo


class FrameImages:
    """A catalogue frame's images by row, read when a thumbnail is drawn."""

    def __init__(self, dataset: Dataset, frame: pd.DataFrame):
        self.dataset = dataset
        self.refs = frame["ref"].tolist()

    def __getitem__(self, row: int) -> np.ndarray:
        return self.dataset.read_image(self.refs[row])


@dataclass
class RunGalaxies:
    experiment: Experiment
    dataset: Dataset
    chosen: LabelledSplit  # the galaxies the run kept, in the order the worker saw them

    @property
    def images(self) -> FrameImages:
        return FrameImages(self.dataset, self.chosen.frame)

    def rows(self, ids: np.ndarray, run_id: str) -> np.ndarray:
        """Rows of `chosen.frame` for these ids; a GalaxyError when the catalogue lost some since."""
        positions = pd.Series(np.arange(len(self.chosen.frame)), index=self.chosen.frame["id"].astype(str))
        wanted = pd.Index(ids.astype(str))
        missing = wanted.difference(positions.index)
        if len(missing):
            raise GalaxyError(f"dataset {self.dataset.name!r} no longer has galaxies {list(missing[:3])} that "
                              f"{run_id} measured; the catalogue changed since.")
        return positions.loc[wanted].to_numpy()


def run_galaxies(run: RunInfo) -> RunGalaxies:
    frozen = read_frozen(run.dir)
    dataset = load_dataset(frozen.dataset, frozen.cache_dir)
    return RunGalaxies(frozen.experiment, dataset, labelled_split(dataset, frozen.experiment, run.dir / "split.csv",
                                                                     read_overrides(run.dir / RUN_COPY)))
