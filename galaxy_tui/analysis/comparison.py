"""Runs side by side: which can be compared (same dataset, labelling and split) and their figures.
`comparability` alone reads two small files and imports no pandas: the Results pane groups by it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.frozen_run import DERIVED, read_config
from galaxy_tui.registry import FIXED_LABEL_KINDS
from galaxy_tui.runs import RunInfo
from galaxy_tui.task_kinds import task_kind

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Comparability:
    """What two results must share to be compared: the same galaxies, labelled the same way, split alike."""

    dataset: str
    labelling: str  # the labels section, as canonical JSON
    split: str | None  # the first 12 hex digits of split.csv's sha256

    @property
    def threshold(self) -> object:
        return json.loads(self.labelling).get("threshold") if self.labelling else None

    def describe(self) -> str:
        rule = f"threshold {self.threshold}" if self.labelling else "labels from its files"
        return f"{self.dataset}, {rule}, split {(self.split or 'missing')[:6]}"

    def why_not(self, other: Comparability) -> str:
        """What `other` does not share with this one ("" when they are comparable)."""
        if other.dataset != self.dataset:
            return f"dataset {other.dataset!r}, not {self.dataset!r}"
        if other.labelling != self.labelling:
            mine, theirs = json.loads(self.labelling or "{}"), json.loads(other.labelling or "{}")
            differ = [f"{key} {theirs.get(key)}, not {mine.get(key)}" for key in sorted({*mine, *theirs})
                      if mine.get(key) != theirs.get(key)]
            return f"labelling: {'; '.join(differ)}"
        if other.split != self.split:
            return (f"another split (split.csv {other.split or 'missing'}, not {self.split or 'missing'}): "
                    f"other galaxies were held out")
        return ""


def comparability(run: RunInfo) -> Comparability:
    experiment = (config := read_config(run.dir)).get("experiment", {})
    dataset = config.get("dataset", {})
    voted = dataset.get("kind") not in FIXED_LABEL_KINDS  # a folder per class, a label column: no rule applies
    return Comparability(str(dataset.get("name", "")),
                         json.dumps(experiment.get("labels", {}), sort_keys=True) if voted else "", split_hash(run))


@dataclass(frozen=True)
class Compared:
    """One run's (or ensemble's) figures, and what it must share with another to be compared."""

    run: str
    kind: str  # "run", "ensemble", "boosted"
    dataset: str
    labelling: str  # the labels section, as canonical JSON ("": the dataset's files say the classes)
    split: str | None  # the first 12 hex digits of split.csv's sha256
    task: str
    model: str
    image_size: int | None
    best_epoch: int | None
    epochs_trained: int | None
    best_val: float | None
    test: float | None  # accuracy, or RMSE for vote fractions
    macro_f1: float | None
    train_seconds_all_attempts: float | None
    samples_per_s: float | None
    parameters: int | None

    @property
    def comparable(self) -> Comparability:
        return Comparability(self.dataset, self.labelling, self.split)

    @property
    def metric(self) -> str:
        return task_kind(self.task).headline


def split_hash(run: RunInfo) -> str | None:
    path = run.dir / "split.csv"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else None


def _median_speed(run: RunInfo) -> float | None:
    speeds = [e["samples_per_s"] for e in read_events(run.dir / "events.jsonl")
              if e.get("type") == "step" and isinstance(e.get("samples_per_s"), (int, float))]
    return round(median(speeds), 1) if speeds else None


def compared(run: RunInfo, damaged: list[str] | None = None) -> Compared:
    """The figures of a finished run or ensemble; a GalaxyError saying why when it has no results. Figures of a
    damaged metrics.json are left out, and said in `damaged`."""
    metrics = read_metrics(run.dir, damaged)
    if not metrics:
        raise GalaxyError(f"{run.id} has no results yet (state {run.state}); only finished runs are compared.")
    config = read_config(run.dir)
    experiment = config.get("experiment", {})
    task = str(experiment.get("task", "classification"))
    kind = next((derived for derived in DERIVED if derived in config), "run")
    best = next((metrics[k] for k in ("best_val_acc", "best_val_rmse") if metrics.get(k) is not None), None)
    shared = comparability(run)
    return Compared(
        run=run.id, kind=kind, dataset=shared.dataset, labelling=shared.labelling, split=shared.split, task=task,
        model=str(metrics.get("model") or experiment.get("model", "")), image_size=experiment.get("image_size"),
        best_epoch=metrics.get("best_epoch"), epochs_trained=metrics.get("epochs_trained"), best_val=best,
        test=metrics.get(task_kind(task).headline), macro_f1=metrics.get("macro_f1"),
        train_seconds_all_attempts=metrics.get("seconds"), samples_per_s=None if kind != "run" else _median_speed(run),
        parameters=metrics.get("parameters"))


def comparable_groups(items: list[Compared]) -> list[list[Compared]]:
    """The runs grouped by what makes them comparable, in the order first met."""
    groups: dict[Comparability, list[Compared]] = {}
    for item in items:
        groups.setdefault(item.comparable, []).append(item)
    return list(groups.values())


def comparison_frame(items: list[Compared]) -> pd.DataFrame:
    """One row per run with its group number (1 = the first group met), as `compare --csv` writes it."""
    import pandas as pd
    rows: list[dict[str, Any]] = []
    for number, group in enumerate(comparable_groups(items), start=1):
        for item in group:
            rows.append({"group": number, **{k: v for k, v in asdict(item).items() if k != "labelling"},
                         "labelling": item.labelling or "—"})  # —: the dataset's files say the classes
    return pd.DataFrame(rows)
