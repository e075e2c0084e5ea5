"""The curate job: the best model's penultimate features for every galaxy of the run's dataset (the labelled
ones, then those the labelling rule left out), saved as the run's embedding (curation/embedding.npy, float16 unit
rows), and each galaxy's morphology statistics measured on its pixels (curation/morphology.npy); then the curation
lists made from them (curation/rankings). Both are written a chunk at a time into a partial file that records how
far it got, so a stopped job continues where it stopped."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.curation.embedding import (
    EMBEDDING,
    GALAXIES,
    LEFT_OUT,
    MORPHOLOGY,
    curation_folder,
    read_embedding,
    unit_rows,
)
from galaxy_tui.curation.morphology import MEASURED_BY, morphology
from galaxy_tui.curation.rankings import Targets, write_rankings
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.train.attempt import Attempt, Prepared
from galaxy_tui.train.evaluation_job import load_best
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.penultimate import penultimate
from galaxy_tui.train.tasks import VoteFractionTask

CHUNK = 2048  # galaxies embedded between two saves of the partial file (the curate table's `chunk` may change it)


@dataclass(frozen=True)
class Source:
    """Galaxies read from one image array: its rows, in the embedding's order."""
    images: np.ndarray
    rows: np.ndarray


def curate(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> int:
    folder = curation_folder(attempt.run_dir)
    folder.mkdir(exist_ok=True)
    options = attempt.config.get("curate", {})
    load_best(attempt, trainer)
    galaxies, sources = _galaxies(attempt, prepared, bool(options.get("labelled_only", False)))
    chunk = int(options.get("chunk", CHUNK))
    if not _complete(folder, EMBEDDING, galaxies):
        _fill(attempt, folder, EMBEDDING, galaxies, sources, chunk, _embedded(trainer), np.float16, "embedding")
    if not _complete(folder, MORPHOLOGY, galaxies, MEASURED_BY):
        _fill(attempt, folder, MORPHOLOGY, galaxies, sources, chunk, _measured, np.float32, "measuring morphology",
              MEASURED_BY)
    attempt.state("evaluating", message="ranking: likely wrong labels, what to label next, the odd ones out")
    summary = write_rankings(folder, read_embedding(attempt.run_dir), _targets(prepared, galaxies),
                             attempt.exp.seed, str(options.get("map", "pca")), np.load(folder / MORPHOLOGY))
    attempt.emit("curated", **summary)
    issues = summary["label_issues"]
    attempt.state("finished", message=f"curated: {summary['galaxies']} galaxies embedded"
                                      + (f", {issues} likely label issues" if issues is not None else "")
                                      + f", {summary['left_out']} without a label ranked")
    return 0


def _galaxies(attempt: Attempt, prepared: Prepared, labelled_only: bool) -> tuple[pd.DataFrame, list[Source]]:
    """The embedding's galaxies (row, id, part, label) and where their images are: the run's split first, then
    the dataset's galaxies the labelling left out (their images prepared like the run's)."""
    parts = np.full(len(prepared.ids), "", dtype=object)
    for name, split in prepared.splits.items():
        parts[split.indices] = name
    rows = np.flatnonzero(parts != "")
    names = np.asarray(prepared.classes, dtype=object)
    rule = prepared.rule_labels[rows]
    labels = np.where(rule >= 0, names[np.clip(rule, 0, None)], "")
    frame = pd.DataFrame({"id": prepared.ids[rows].astype(str), "part": parts[rows], "label": labels})
    sources = [Source(prepared.images, rows)]
    dataset = prepared.dataset
    left = dataset.frame[~dataset.frame["id"].astype(str).isin(set(frame["id"]))]
    if len(left) and not labelled_only:
        attempt.state("preparing", message=f"preparing the {len(left)} galaxies without a label")
        images = prepare_images(dataset, list(left["ref"]), attempt.exp.image_size, attempt.frozen.cache_dir,
                                attempt.frozen.crop, lambda done, total: attempt.stop.check())
        valid = np.flatnonzero(images.valid)
        frame = pd.concat([frame, pd.DataFrame({"id": left["id"].astype(str).to_numpy()[valid], "part": LEFT_OUT,
                                                "label": ""})], ignore_index=True)
        sources.append(Source(images.images, valid))
    frame.insert(0, "row", np.arange(len(frame)))
    return frame, sources


def _complete(folder: Path, name: str, galaxies: pd.DataFrame, measured_by: str = "") -> bool:
    """`name` (an array of rows) is already there for exactly these galaxies, made by this version of its measure."""
    if not (folder / name).exists() or not (folder / GALAXIES).exists():
        return False
    if str((read_json(_record_of(folder, name)) or {}).get("measured_by", "")) != measured_by:
        return False
    saved = pd.read_csv(folder / GALAXIES, dtype={"id": str}, keep_default_na=False)
    return saved["id"].tolist() == galaxies["id"].tolist() and len(np.load(folder / name, mmap_mode="r")) == len(
        galaxies)


RowsOf = Callable[[Source, np.ndarray], np.ndarray]  # the values of a source's rows: galaxies x columns


def _record_of(folder: Path, name: str) -> Path:
    return folder / f"{name.removesuffix('.npy')}.json"


def _fill(attempt: Attempt, folder: Path, name: str, galaxies: pd.DataFrame, sources: list[Source], chunk: int,
          rows_of: RowsOf, dtype: type, what: str, measured_by: str = "") -> None:
    """The array `name` (a row per galaxy) written a chunk at a time into NAME.partial.npy, with NAME.partial.json
    saying how many rows are done, for which galaxies and by which version of the measure, so a stopped job
    continues where it stopped; NAME.json says the same of the whole array."""
    stem = name.removesuffix(".npy")
    partial, progress_file = folder / f"{stem}.partial.npy", folder / f"{stem}.partial.json"
    total = len(galaxies)
    ids_digest = str(pd.util.hash_pandas_object(galaxies["id"], index=False).sum())
    progress = read_json(progress_file) or {}
    same = progress.get("ids") == ids_digest and str(progress.get("measured_by", "")) == measured_by
    done = int(progress.get("rows", 0)) if same and partial.exists() else 0
    galaxies.to_csv(folder / GALAXIES, index=False)
    out = np.lib.format.open_memmap(partial, mode="r+") if done else None
    offset = 0
    for source in sources:
        for start in range(0, len(source.rows), chunk):
            end = min(start + chunk, len(source.rows))
            if offset + end <= done:
                continue
            attempt.stop.check()
            attempt.state("evaluating", message=f"{what}: {offset + start} of {total} galaxies")
            values = rows_of(source, source.rows[start:end])
            if out is None:
                out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=(total, values.shape[1]))
            out[offset + start:offset + end] = values
            out.flush()
            atomic_write_json(progress_file, {"rows": offset + end, "galaxies": total, "ids": ids_digest,
                                              "measured_by": measured_by})
            attempt.emit(stem, done=offset + end, total=total)
        offset += len(source.rows)
    del out
    os.replace(partial, folder / name)
    atomic_write_json(_record_of(folder, name), {"galaxies": total, "ids": ids_digest, "measured_by": measured_by})
    progress_file.unlink(missing_ok=True)


def _embedded(trainer: Trainer) -> RowsOf:
    placeholder = _placeholder(trainer)

    def rows_of(source: Source, rows: np.ndarray) -> np.ndarray:
        with trainer.reading(source.images):
            return unit_rows(penultimate(trainer, Split(rows, np.repeat(placeholder, len(rows), axis=0)), "curated"))
    return rows_of


def _measured(source: Source, rows: np.ndarray) -> np.ndarray:
    return morphology(np.asarray(source.images[rows]))


def _placeholder(trainer: Trainer) -> np.ndarray:
    """A target row of the right shape and type for galaxies predicted without one (the loss is not read)."""
    return np.zeros((1, *trainer.train.labels.shape[1:]), dtype=trainer.train.labels.dtype)


def _targets(prepared: Prepared, galaxies: pd.DataFrame) -> Targets:
    """What each labelled galaxy of the embedding was trained on, in the embedding's order."""
    by_row = {}
    for split in prepared.splits.values():
        by_row.update(zip(prepared.ids[split.indices].astype(str), split.labels))
    labelled = galaxies.loc[galaxies["part"] != LEFT_OUT, "id"]
    values = np.stack([by_row[galaxy_id] for galaxy_id in labelled])
    task = prepared.task
    if not isinstance(task, VoteFractionTask):
        return Targets(prepared.classes, labels=values.astype(np.int64))
    frame = prepared.dataset.frame
    votes = (frame.set_index(frame["id"].astype(str))["total_classifications"].reindex(labelled).to_numpy(float)
             if "total_classifications" in frame else None)
    return Targets(prepared.classes, fractions=values[:, :task.outputs].astype(np.float32),
                   answers=tuple(task.tree.columns), votes=votes)
