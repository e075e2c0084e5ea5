"""What `predict` classifies: image files and folders, or a registered dataset's galaxies (all of them, or
exactly those a run's labelling rule dropped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.image_files import Collected, collect_images
from galaxy_tui.data.images import read_image_file
from galaxy_tui.data.labels import usable_votes
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.inference.predicting import Item
from galaxy_tui.registry import Registry
from galaxy_tui.runs import RunInfo


def file_items(paths: list[Path]) -> tuple[list[Item], Collected]:
    collected = collect_images(paths)
    return [Item(path.stem, str(path), lambda path=path: read_image_file(path)) for path in collected.files], collected


def dataset_items(registry: Registry, name: str, run: RunInfo, unlabelled: bool) -> list[Item]:
    """The dataset's galaxies in its catalogue order; `unlabelled`: only those the run's labelling rule (its
    threshold, vote count and artefact cuts, as frozen in its config) leaves without a label — for a
    vote-fraction run, those it would not train on."""
    dataset = load_dataset(registry.dataset(name), registry.cache_dir)
    rows = np.arange(len(dataset.frame))
    if unlabelled:
        experiment = read_frozen(run.dir).experiment
        if not dataset.has_votes:
            raise GalaxyError(f"dataset {name!r} has fixed labels, not votes: no labelling rule drops any of its "
                              f"galaxies; use --all.")
        if experiment.task == "vote-fractions":
            rows = np.flatnonzero(~usable_votes(dataset.votes, experiment.labels))
        else:
            rows = np.flatnonzero(dataset.labels(experiment.labels) < 0)
    return _items(dataset, dataset.frame.iloc[rows])


def _items(dataset: Dataset, frame: pd.DataFrame) -> list[Item]:
    return [Item(str(galaxy_id), str(ref), lambda ref=ref: dataset.read_image(ref))
            for galaxy_id, ref in zip(frame["id"], frame["ref"])]


def held_out_items(run: RunInfo, count: int) -> list[Item]:
    """The first `count` test galaxies of the run's own split (validation where it has no test part): real
    galaxies the run never trained on, read from its dataset."""
    frozen = read_frozen(run.dir)
    dataset = load_dataset(frozen.dataset, frozen.cache_dir)
    split = pd.read_csv(run.dir / "split.csv", dtype={"id": str, "split": str})
    part = "test" if (split["split"] == "test").any() else "val"
    wanted = set(split["id"][split["split"] == part].head(count))
    return _items(dataset, dataset.frame[dataset.frame["id"].astype(str).isin(wanted)])
