"""Galaxy Zoo DECaLS, the GZD-5 campaign (Walmsley et al. 2022): gz_decals_volunteers_5.csv + <iauname>.png cut-outs
(424 px), in one folder or in the published J### sub-folders (a .jpg of the same name is read too)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from galaxy_tui.data.catalog import (
    Dataset,
    csv_header,
    ensure_not_empty,
    file_signature,
    fingerprint_of,
    list_images,
    read_csv,
    require_dir,
)
from galaxy_tui.data.gz2 import FolderImages, attach_images, tree_answers
from galaxy_tui.data.labels import VOTE_CLASSES
from galaxy_tui.data.vote_tree import decals5_tree
from galaxy_tui.errors import GalaxyError

DECALS_FAMILIES = ("fraction", "debiased")
TOTAL = "smooth-or-featured_total-votes"
DECALS5_ANSWERS = {"smooth": "smooth-or-featured_smooth", "disk": "smooth-or-featured_featured-or-disk",
                   "artifact": "smooth-or-featured_artifact", "edgeon_yes": "disk-edge-on_yes",
                   "edgeon_no": "disk-edge-on_no", "spiral": "has-spiral-arms_yes"}


def image_index(images: Path) -> dict[str, tuple[str, os.stat_result]]:
    """Image files in `images` and in its sub-folders, by file name: (path inside `images`, stat)."""
    require_dir(images, "Image")
    found = {name: (name, stat) for name, stat in list_images(images).items()}
    with os.scandir(images) as entries:
        folders = sorted(entry.name for entry in entries if entry.is_dir())
    for folder in folders:
        for name, stat in list_images(images / folder).items():
            found.setdefault(name, (f"{folder}/{name}", stat))
    return found


def _image_of(index: dict[str, tuple[str, os.stat_result]], galaxy: str) -> str:
    """The galaxy's image inside the folder (a .png, else a .jpg; the .png it should have where there is none)."""
    found = index.get(f"{galaxy}.png") or index.get(f"{galaxy}.jpg")
    return found[0] if found else f"{galaxy}.png"


def load_gz_decals5(name: str, catalog: Path, images: Path, family: str = "fraction",
                    cache_dir: Path | None = None) -> Dataset:
    if family not in DECALS_FAMILIES:
        raise GalaxyError(f"[datasets.{name}] fractions = {family!r} is not one of {', '.join(DECALS_FAMILIES)}.")
    header = csv_header(catalog, "GZ DECaLS catalogue")
    if "iauname" not in header or TOTAL not in header:
        raise GalaxyError(f"{catalog} has no iauname or {TOTAL} column: it is not a GZ DECaLS volunteer catalogue "
                          f"(gz_decals_volunteers_5.csv from Zenodo record 4573248).")
    tree, tree_columns = decals5_tree(family, header)
    rule = {ours: f"{theirs}_{family}" for ours, theirs in DECALS5_ANSWERS.items()}
    sky = [column for column in ("ra", "dec") if column in header]
    numeric = [TOTAL, *rule.values(), *sky]
    table = read_csv(catalog, "GZ DECaLS catalogue", ["iauname", *numeric], numeric=numeric, cache_dir=cache_dir)
    table = table.drop_duplicates("iauname").reset_index(drop=True)
    index = image_index(images)
    frame = pd.DataFrame({
        "id": table["iauname"].astype(str),
        "ref": [_image_of(index, galaxy) for galaxy in table["iauname"].astype(str)],
        **{ours: table[theirs] for ours, theirs in rule.items()},
        "total_classifications": table[TOTAL],
        **{column: table[column] for column in sky},
    })
    frame, problems, signature = attach_images(frame, images, str(catalog), dict(index.values()))
    ensure_not_empty(frame, str(catalog))
    return Dataset(name, "gz-decals5", frame, VOTE_CLASSES, FolderImages(images),
                   fingerprint_of("gz-decals5", family, file_signature(catalog), signature), problems,
                   location=str(catalog), tree=tree,
                   answer_source=lambda rows: tree_answers(catalog, "GZ DECaLS catalogue", "iauname", tree_columns,
                                                           rows, cache_dir))
