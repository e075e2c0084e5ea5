"""Galaxy Zoo 2 (Hart et al. 2016) catalogue + filename mapping + a folder of <asset_id>.jpg."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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
from galaxy_tui.data.images import read_image_file
from galaxy_tui.data.labels import VOTE_CLASSES
from galaxy_tui.data.vote_tree import hart16_tree
from galaxy_tui.errors import GalaxyError

FRACTION_FAMILIES = ("debiased", "weighted_fraction", "fraction")

HART16_ANSWERS = {
    "smooth": "t01_smooth_or_features_a01_smooth",
    "disk": "t01_smooth_or_features_a02_features_or_disk",
    "artifact": "t01_smooth_or_features_a03_star_or_artifact",
    "edgeon_yes": "t02_edgeon_a04_yes",
    "edgeon_no": "t02_edgeon_a05_no",
    "spiral": "t04_spiral_a08_spiral",
}


class FolderImages:
    """`ref` is a file name inside one folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __call__(self, ref: str) -> np.ndarray:
        return read_image_file(self.folder / ref)


def attach_images(frame: pd.DataFrame, images: Path, where: str,
                  present: dict[str, os.stat_result] | None = None) -> tuple[pd.DataFrame, list[str], list]:
    """Keep rows whose `ref` file exists in `images` (`present`: the files found there by their path inside it,
    where a loader looked itself; else the folder's own files); report the rest. Returns frame, problems,
    signature."""
    if present is None:
        require_dir(images, "Image")
        present = list_images(images)
    exists = frame["ref"].isin(present.keys())
    problems = []
    if not exists.all():
        missing = frame.loc[~exists, "ref"]
        problems.append(f"{where}: {len(missing)} of {len(frame)} catalogue rows have no image in {images} "
                        f"(e.g. {missing.iloc[0]}); they were skipped.")
    frame = frame[exists].reset_index(drop=True)
    signature = [(ref, present[ref].st_size, present[ref].st_mtime_ns) for ref in frame["ref"]]
    return frame, problems, signature


def load_gz2_hart16(name: str, catalog: Path, mapping: Path, images: Path, family: str = "debiased",
                    cache_dir: Path | None = None) -> Dataset:
    if family not in FRACTION_FAMILIES:
        raise GalaxyError(f"[datasets.{name}] fractions = {family!r} is not one of {', '.join(FRACTION_FAMILIES)}.")
    rule = {ours: f"{theirs}_{family}" for ours, theirs in HART16_ANSWERS.items()}
    header = csv_header(catalog, "GZ2 Hart16 catalogue")
    tree, tree_columns = hart16_tree(family, header)
    wanted = ["total_classifications", *rule.values()]
    sky = [column for column in ("ra", "dec") if column in header]  # for the lists a labelling project reads
    table = read_csv(catalog, "GZ2 Hart16 catalogue", ["dr7objid", *wanted, *sky], numeric=[*wanted, *sky],
                     cache_dir=cache_dir)
    links = read_csv(mapping, "GZ2 filename mapping", ["objid", "asset_id"], cache_dir=cache_dir)
    frame = table.merge(links[["objid", "asset_id"]], left_on="dr7objid", right_on="objid", how="inner")
    problems = []
    unmapped = len(table) - len(frame)
    if unmapped:
        problems.append(f"{mapping}: {unmapped} catalogue rows have no filename mapping; they were skipped.")
    frame = pd.DataFrame({
        "id": frame["dr7objid"].astype(str),
        "ref": frame["asset_id"].astype(str) + ".jpg",
        **{ours: frame[theirs] for ours, theirs in rule.items()},
        "total_classifications": frame["total_classifications"],
        **{column: frame[column] for column in sky},
    })
    frame, missing, signature = attach_images(frame, images, str(catalog))
    ensure_not_empty(frame, str(catalog))
    return Dataset(name, "gz2-hart16", frame, VOTE_CLASSES, FolderImages(images),
                   fingerprint_of("gz2-hart16", family, file_signature(catalog), signature),
                   problems + missing, location=str(catalog), tree=tree,
                   answer_source=lambda rows: tree_answers(catalog, "GZ2 Hart16 catalogue", "dr7objid", tree_columns,
                                                           rows, cache_dir))


def tree_answers(catalog: Path, what: str, id_column: str, columns: dict[str, str], rows: pd.DataFrame,
                 cache_dir: Path | None) -> pd.DataFrame:
    """The decision tree's answers (and counts) of these rows, read only when a vote-fraction run asks: a
    classification needs six of the catalogue's columns, the tree up to 74 more."""
    table = read_csv(catalog, what, [id_column, *columns], numeric=list(columns), cache_dir=cache_dir)
    table = table.set_index(table[id_column].astype(str)).rename(columns=columns)
    table = table[~table.index.duplicated(keep="first")]  # the dataset kept each galaxy's first row
    return table.reindex(rows["id"].to_numpy())[list(columns.values())].reset_index(drop=True)
