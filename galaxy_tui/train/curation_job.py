"""The curate job: the best model's penultimate features for every galaxy of the run's dataset (the labelled
ones, then those the labelling rule left out), saved as the run's embedding (curation/embedding.npy, float16 unit
rows), then the curation lists made from it (curation/rankings). The embedding is written a chunk at a time into
a partial file that records how far it got, so a stopped job continues where it stopped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.curation.embedding import EMBEDDING, GALAXIES, LEFT_OUT, curation_folder, read_embedding, unit_rows
from galaxy_tui.curation.rankings import Targets, write_rankings
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.train.attempt import Attempt, Prepared
from galaxy_tui.train.evaluation_job import load_best
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.penultimate import penultimate
from galaxy_tui.train.tasks import VoteFractionTask

CHUNK = 2048  # galaxies embedded between two saves of the partial file (the curate table's `chunk` may change it)
PARTIAL = "embedding.partial.npy"
PROGRESS = "embedding.partial.json"


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
    if not _complete(folder, galaxies):
        _embed(attempt, trainer, folder, galaxies, sources, int(options.get("chunk", CHUNK)))
    attempt.state("evaluating", message="ranking: likely wrong labels, what to label next, the odd ones out")
    summary = write_rankings(folder, read_embedding(attempt.run_dir), _targets(prepared, galaxies),
                             attempt.exp.seed, str(options.get("map", "pca")))
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


def _complete(folder: Path, galaxies: pd.DataFrame) -> bool:
    """An embedding of exactly these galaxies is already there."""
    if not (folder / EMBEDDING).exists() or not (folder / GALAXIES).exists():
        return False
    saved = pd.read_csv(folder / GALAXIES, dtype={"id": str}, keep_default_na=False)
    return saved["id"].tolist() == galaxies["id"].tolist() and len(np.load(folder / EMBEDDING, mmap_mode="r")) == len(
        galaxies)


def _embed(attempt: Attempt, trainer: Trainer, folder: Path, galaxies: pd.DataFrame, sources: list[Source],
           chunk: int) -> None:
    total = len(galaxies)
    ids_digest = str(pd.util.hash_pandas_object(galaxies["id"], index=False).sum())
    progress = read_json(folder / PROGRESS) or {}
    done = int(progress.get("rows", 0)) if progress.get("ids") == ids_digest and (folder / PARTIAL).exists() else 0
    galaxies.to_csv(folder / GALAXIES, index=False)
    out = np.lib.format.open_memmap(folder / PARTIAL, mode="r+") if done else None
    placeholder = _placeholder(trainer)
    offset = 0
    for source in sources:
        for start in range(0, len(source.rows), chunk):
            end = min(start + chunk, len(source.rows))
            if offset + end <= done:
                continue
            attempt.state("evaluating", message=f"embedding: {offset + start} of {total} galaxies")
            rows = source.rows[start:end]
            with trainer.reading(source.images):
                values = penultimate(trainer, Split(rows, np.repeat(placeholder, len(rows), axis=0)), "curated")
            if out is None:
                out = np.lib.format.open_memmap(folder / PARTIAL, mode="w+", dtype=np.float16,
                                                shape=(total, values.shape[1]))
            out[offset + start:offset + end] = unit_rows(values)
            out.flush()
            atomic_write_json(folder / PROGRESS, {"rows": offset + end, "galaxies": total, "ids": ids_digest})
            attempt.emit("embedding", done=offset + end, total=total)
        offset += len(source.rows)
    del out
    os.replace(folder / PARTIAL, folder / EMBEDDING)
    (folder / PROGRESS).unlink(missing_ok=True)


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
