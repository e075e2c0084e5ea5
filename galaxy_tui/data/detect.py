"""Guess a dataset's kind and table from a path the user typed (the UI's "add dataset")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import pandas as pd

from galaxy_tui.data.catalog import list_images
from galaxy_tui.errors import GalaxyError


def _image_folder_beside(path: Path, expected: list[str]) -> Path | None:
    """The folder beside `path` (or one level down) holding the most of the `expected` image files."""
    best, most = None, 0
    near = [d for d in path.parent.iterdir() if d.is_dir()]
    for candidate in [*near, *(p for d in near for p in d.iterdir() if p.is_dir())]:
        found = sum((candidate / name).exists() for name in expected)
        if found > most:
            best, most = candidate, found
    return best


# the Kaggle solutions, GZ2 Hart16, GZ DECaLS (GZD-5)
CATALOGUE_COLUMNS = ({"GalaxyID", "Class1.1"}, {"dr7objid"}, {"iauname", "smooth-or-featured_total-votes"})


def _catalogue_in(folder: Path) -> Path | None:
    """A Kaggle solutions, GZ2 Hart16 or GZ DECaLS table in the folder."""
    for candidate in sorted(folder.glob("*.csv")):
        try:
            columns = set(pd.read_csv(candidate, nrows=0).columns)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            continue
        if any(wanted <= columns for wanted in CATALOGUE_COLUMNS):
            return candidate
    return None


def detect_dataset(typed: Path, workspace: Path) -> dict[str, Any]:
    """A [datasets.*] table for the path a person typed, or a GalaxyError saying what was found and what is
    expected. Paths are kept as typed (relative stays relative, a symlink is not resolved); files found
    beside it are written the same way."""
    path = typed.expanduser()
    if not path.is_absolute():
        path = workspace / path
    if not path.exists():
        raise GalaxyError(f"{path} does not exist. Give the path of a Galaxy10/GalaxyMNIST .h5 file, a GZ2 Hart16 "
                          f"or Kaggle solutions .csv, or a folder with one sub-folder of images per class.")
    rel = lambda p: str(typed.parent / p.relative_to(path.parent))  # noqa: E731 - p lies beside (or below) path
    if path.is_dir():
        # People point at what they see: the folder holding a catalogue and its images, or the images folder of a
        # catalogue beside it. A folder of two or more class folders is an image folder.
        classes = [d for d in path.iterdir() if d.is_dir() and list_images(d)]
        own = _catalogue_in(path)
        if own is not None:
            return detect_dataset(typed / own.name, workspace)
        beside = _catalogue_in(path.parent) if len(classes) < 2 else None
        if beside is not None:
            return detect_dataset(typed.parent / beside.name, workspace)
        if not classes:
            raise GalaxyError(f"{path} has no sub-folders of jpg/png images; an image-folder dataset needs one "
                              f"folder per class.")
        return {"kind": "image-folder", "path": rel(path)}
    if path.suffix.lower() in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as handle:
                keys = set(handle.keys())
        except OSError as exc:
            raise GalaxyError(f"{path} is not a readable HDF5 file ({exc}).") from None
        if {"images", "ans"} <= keys:
            return {"kind": "galaxy10-h5", "path": rel(path)}
        if {"images", "labels"} <= keys:
            swapped = ("train", "test") if "train" in path.name else ("test", "train")
            partner = path.with_name(path.name.replace(*swapped))
            if partner == path or not partner.exists():
                raise GalaxyError(f"{path} looks like GalaxyMNIST, but its train/test partner {partner.name} "
                                  f"is not beside it.")
            train, test = (path, partner) if "train" in path.name else (partner, path)
            return {"kind": "galaxy-mnist-h5", "train": rel(train), "test": rel(test)}
        raise GalaxyError(f"{path} has datasets {', '.join(sorted(keys)) or 'none'}; expected images + ans "
                          f"(Galaxy10 DECaLS) or images + labels (GalaxyMNIST).")
    if path.suffix.lower() == ".csv":
        try:
            head = pd.read_csv(path, nrows=50)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise GalaxyError(f"{path} could not be read as a CSV table ({type(exc).__name__}); expected a UTF-8 "
                              f"catalogue such as gz2_hart16.csv or training_solutions_rev1.csv.") from None
        columns = set(head.columns)
        if {"GalaxyID", "Class1.1"} <= columns:
            images = _image_folder_beside(path, [f"{i}.jpg" for i in head["GalaxyID"]])
            if images is None:
                raise GalaxyError(f"{path} is a Kaggle GZ2 solutions table, but no folder of images is beside it.")
            return {"kind": "kaggle-gz2", "solutions": rel(path), "images": rel(images), "crop": 0.75}
        if "dr7objid" in columns:
            mapping = path.with_name("gz2_filename_mapping.csv")
            assets = pd.read_csv(mapping, nrows=50)["asset_id"] if mapping.exists() else []
            images = _image_folder_beside(path, [f"{a}.jpg" for a in assets])
            if images is None:
                raise GalaxyError(f"{path} is a GZ2 Hart16 catalogue; put gz2_filename_mapping.csv and the image "
                                  f"folder beside it.")
            return {"kind": "gz2-hart16", "catalog": rel(path), "mapping": rel(mapping), "images": rel(images),
                    "crop": 0.75}
        if {"iauname", "smooth-or-featured_total-votes"} <= columns:
            names = [str(n) for n in head["iauname"]]
            images = _image_folder_beside(path, [f"{n}.png" for n in names] + [f"{n[:4]}/{n}.png" for n in names])
            if images is None:
                raise GalaxyError(f"{path} is a GZ DECaLS catalogue; put the folder of its <iauname>.png cut-outs "
                                  f"(or their J### sub-folders) beside it.")
            return {"kind": "gz-decals5", "catalog": rel(path), "images": rel(images)}
        raise GalaxyError(f"{path}: columns {', '.join(sorted(columns)[:8])} match no known catalogue (GZ2 Hart16 "
                          f"has dr7objid; the Kaggle solutions have GalaxyID and Class1.1 ... Class11.6; GZ DECaLS "
                          f"has iauname and smooth-or-featured_total-votes).")
    raise GalaxyError(f"{path}: unknown file type {path.suffix!r}; expected .h5/.hdf5, .csv or a folder.")


# The name a dataset of a known kind gets in experiments.toml (a folder of classes is named after its folder).
KIND_NAMES = {"kaggle-gz2": "kaggle-gz2", "gz2-hart16": "gz2", "galaxy10-h5": "galaxy10-decals",
              "galaxy-mnist-h5": "galaxy-mnist", "gz-decals5": "gz-decals5"}


def dataset_files(table: dict[str, Any]) -> str:
    """What was found, as the add dialog says it: "solutions data/x.csv, images data/images"."""
    return ", ".join(f"{key} {value}" for key, value in table.items() if key not in ("kind", "crop"))
