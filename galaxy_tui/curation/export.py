"""A curation list as a labelling project reads it: each galaxy's image file (or where in the HDF5 file it is)
and its sky position where the catalogue gives one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from galaxy_tui.data.sources import load_dataset
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.registry import Registry
from galaxy_tui.runs import RunInfo


def with_files_and_sky(registry: Registry, run: RunInfo, ranking: pd.DataFrame) -> pd.DataFrame:
    spec = read_frozen(run.dir).dataset
    dataset = load_dataset(spec, registry.cache_dir)
    frame = dataset.frame.assign(id=dataset.frame["id"].astype(str)).set_index("id")
    refs = frame["ref"].reindex(ranking["id"])
    if "images" in spec.options:  # a catalogue beside a folder of JPEGs: the ref is the file's name
        files = [str(spec.path("images") / str(ref)) if isinstance(ref, str) else "" for ref in refs]
    elif "path" in spec.options and spec.kind != "image-folder":  # an HDF5 file: which row of it
        files = [f"{spec.path('path')}#{ref}" for ref in refs]
    else:
        files = [str(ref) if isinstance(ref, (str, Path)) else "" for ref in refs]
    found = ranking.assign(file=files)
    for column in ("ra", "dec"):
        if column in frame:
            found[column] = frame[column].reindex(ranking["id"]).to_numpy()
    return found
