"""Stratified, seeded train/val/test splits, saved as a CSV of ids so a run can be reproduced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from galaxy_tui.data.labels import class_counts, empty_class_warning, usable_votes
from galaxy_tui.data.overrides import Applied, Overrides, apply_overrides
from galaxy_tui.data.vote_tree import VoteTree
from galaxy_tui.errors import GalaxyError

if TYPE_CHECKING:
    from galaxy_tui.data.catalog import Dataset
    from galaxy_tui.registry import Experiment

SPLITS = ("train", "val", "test")


def _allocate(indices: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Rows of one class cut by `fractions`; every part with a share gets at least one row when the
    class has enough rows for that (rounding alone would leave a 10%-part of a 6-galaxy class empty)."""
    shuffled = rng.permutation(indices)
    sizes = np.diff(np.concatenate([[0], np.round(np.cumsum(fractions) * len(shuffled)).astype(int)]))
    wanted = [i for i, f in enumerate(fractions) if f > 0]
    if len(shuffled) >= len(wanted):
        for i in wanted:
            if sizes[i] == 0:
                sizes[i] += 1
                sizes[int(np.argmax(sizes))] -= 1
    return np.split(shuffled, np.cumsum(sizes)[:-1])


def split_problem(labels: np.ndarray, assignment: np.ndarray, classes: tuple[str, ...],
                  fractions: tuple[float, float, float], where: str) -> str | None:
    """Why this split cannot train and report honestly, or None: a part with a share that holds no
    galaxies, or a class missing from a part."""
    parts = [name for name, f in zip(SPLITS, fractions) if f > 0 or name != "test"]
    if "test" not in parts and (assignment == "test").any():
        parts.append("test")  # the source's own test split
    counts = {part: np.bincount(labels[assignment == part], minlength=len(classes)) for part in parts}
    missing = [(part, classes[c]) for part in parts for c in range(len(classes)) if counts[part][c] == 0]
    if not missing:
        return None
    table = "; ".join(f"{part}: " + ", ".join(f"{classes[c]}={counts[part][c]}" for c in range(len(classes)))
                      for part in parts)
    gaps = ", ".join(f"{name} in {part}" for part, name in missing)
    return (f"{where}: the split leaves no galaxies for {gaps} ({table}); lower the threshold or "
            f"min_classifications for more galaxies, or change split.")


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float], seed: int,
                     fixed: np.ndarray | None = None) -> np.ndarray:
    """'train' / 'val' / 'test' per row, stratified by label within each class.

    `fixed` carries a source's own split ('train'/'test'): its test rows stay test, and val is
    carved out of its train rows in the proportion val : train.
    """
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=object)
    if fixed is not None:
        assignment[fixed == "test"] = "test"
        val_share = fractions[1] / (fractions[0] + fractions[1])
        pool_fractions: tuple[float, ...] = (1 - val_share, val_share)
        pool_names: tuple[str, ...] = ("train", "val")
        pool = fixed != "test"
    else:
        pool_fractions, pool_names, pool = fractions, SPLITS, np.ones(len(labels), dtype=bool)
    for label in np.unique(labels[pool]):
        members = np.flatnonzero(pool & (labels == label))
        for name, chosen in zip(pool_names, _allocate(members, pool_fractions, rng)):
            assignment[chosen] = name
    return assignment


def write_split(path: Path, ids: pd.Series, assignment: np.ndarray) -> None:
    pd.DataFrame({"id": ids.to_numpy(), "split": assignment}).to_csv(path, index=False)


def read_split(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str, "split": str})


@dataclass
class LabelledSplit:
    frame: pd.DataFrame        # the galaxies the experiment uses
    labels: np.ndarray         # their class index (vote fractions: by the rule at the threshold, -1 when unsure)
    assignment: np.ndarray     # 'train' / 'val' / 'test' per row
    counts: dict[str, int]
    tree: VoteTree | None = None  # vote fractions: the questions to predict
    applied: Applied = Applied(0, 0)  # the person's decisions (data/overrides) that changed the labels


def experiment_tree(dataset: Dataset, experiment: Experiment) -> VoteTree:
    """The questions a vote-fraction experiment predicts, checked against what the catalogue has (a
    GalaxyError says what is missing and what to do)."""
    where = f"experiment {experiment.name!r} on dataset {dataset.name!r}"
    if dataset.tree is None or not dataset.tree.questions:
        raise GalaxyError(f"{where}: the catalogue has no decision-tree answers to predict; use task = "
                          f"\"classification\".")
    tree = dataset.tree.select(experiment.questions, where)
    if experiment.loss == "dirichlet-multinomial" and not tree.has_counts:
        without = [q.key for q in tree.questions if not q.count_columns]
        raise GalaxyError(f"{where}: loss = \"dirichlet-multinomial\" needs the volunteers' vote counts, and the "
                          f"catalogue has no _count columns for {', '.join(without)}; use loss = \"mse\" or "
                          f"\"question-ce\", or choose questions that have counts.")
    return tree


def labelled_split(dataset: Dataset, experiment: Experiment, saved: Path | None = None,
                   overrides: Overrides | None = None) -> LabelledSplit:
    """The galaxies an experiment trains and reports on, split — or a GalaxyError saying why it cannot:
    a class with no galaxies at this labelling, a part of the split left empty, or a saved split.csv
    that no longer fits the dataset. The launcher calls it before creating a run; the worker again.

    A classification keeps the galaxies the labelling rule gives a class; a vote-fraction run keeps every
    galaxy with enough votes that is not an artefact, stratified by the rule's class (unsure ones apart).
    `overrides` (data/overrides) exclude and relabel single galaxies; a vote-fraction run takes the exclusions
    only (its targets are the volunteers' fractions, not a class)."""
    fractions = experiment.task == "vote-fractions"
    labels, applied = apply_overrides(dataset.frame["id"], dataset.labels(experiment.labels), dataset.classes,
                                      overrides, f"the overrides of dataset {dataset.name!r}")
    excluded = dataset.frame["id"].astype(str).isin(overrides.excluded).to_numpy() if overrides else None
    counts = class_counts(labels, dataset.classes)
    tree = experiment_tree(dataset, experiment) if fractions else None
    if fractions:
        usable = usable_votes(dataset.votes, experiment.labels)
        keep = np.flatnonzero(usable if excluded is None else usable & ~excluded)
        applied = Applied(int(excluded[usable].sum()) if excluded is not None else 0, 0)
        if not len(keep):
            raise GalaxyError(f"{dataset.name}: no galaxy has at least {experiment.labels.min_classifications} "
                              f"votes and an artefact share below {experiment.labels.max_artifact:g}; lower "
                              f"min_classifications or raise max_artifact.")
        counts = {"galaxies": len(keep), **counts}
    else:
        warning = empty_class_warning(counts, dataset.name)
        if warning:
            raise GalaxyError(warning)
        if len(dataset.classes) < 2:
            raise GalaxyError(f"{dataset.name}: only one class ({', '.join(dataset.classes)}); a classifier needs two "
                              f"or more (an image folder needs a sub-folder of images per class).")
        keep = np.flatnonzero(labels >= 0)
    frame = dataset.frame.iloc[keep].reset_index(drop=True)
    labels = labels[keep].astype(np.int64)
    strata, stratum_names = (labels + 1, ("unsure", *dataset.classes)) if fractions else (labels, dataset.classes)
    if saved is not None and saved.exists():
        assignment = frame["id"].map(read_split(saved).set_index("id")["split"]).to_numpy()
        if pd.isna(assignment).any():
            raise GalaxyError(f"{saved} does not match the dataset any more; use --restart.")
    else:
        fixed = frame["split"].to_numpy() if "split" in frame.columns else None
        assignment = stratified_split(strata, experiment.split, experiment.seed, fixed)
    if fractions:  # a part needs galaxies, not every class
        strata, stratum_names = np.zeros_like(strata), ("galaxies",)
    problem = split_problem(strata, assignment, stratum_names, experiment.split, dataset.name)
    if problem:
        raise GalaxyError(problem)
    return LabelledSplit(frame, labels, assignment, counts, tree, applied)
