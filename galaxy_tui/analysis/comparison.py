"""Runs side by side: which can be compared (same dataset, labelling and split) and their figures."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

import pandas as pd

from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.runs import DERIVED, RunInfo, read_config


@dataclass(frozen=True)
class Compared:
    """One run's (or ensemble's) figures, and what it must share with another to be compared."""

    run: str
    kind: str  # "run", "ensemble", "boosted"
    dataset: str
    labelling: str  # the labels section, as canonical JSON
    split: str | None  # the first 12 hex digits of split.csv's sha256
    task: str
    model: str
    image_size: int | None
    epochs: int | None
    best_val: float | None
    test: float | None  # accuracy, or RMSE for vote fractions
    macro_f1: float | None
    seconds: float | None
    samples_per_s: float | None
    parameters: int | None

    @property
    def comparable_key(self) -> tuple[str, str, str | None]:
        return self.dataset, self.labelling, self.split

    @property
    def metric(self) -> str:
        return "rmse" if self.task == "vote-fractions" else "accuracy"


def split_hash(run: RunInfo) -> str | None:
    path = run.dir / "split.csv"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else None


def _median_speed(run: RunInfo) -> float | None:
    speeds = [e["samples_per_s"] for e in read_events(run.dir / "events.jsonl")
              if e.get("type") == "step" and isinstance(e.get("samples_per_s"), (int, float))]
    return round(median(speeds), 1) if speeds else None


def compared(run: RunInfo) -> Compared:
    """The figures of a finished run or ensemble; a GalaxyError saying why when it has no results."""
    metrics = read_json(run.dir / "results" / "metrics.json")
    if not metrics:
        raise GalaxyError(f"{run.id} has no results yet (state {run.state}); only finished runs are compared.")
    config = read_config(run.dir)
    experiment = config.get("experiment", {})
    task = str(experiment.get("task", "classification"))
    kind = next((derived for derived in DERIVED if derived in config), "run")
    best = next((metrics[k] for k in ("best_val_acc", "best_val_rmse") if metrics.get(k) is not None), None)
    return Compared(
        run=run.id, kind=kind, dataset=str(config.get("dataset", {}).get("name", "")),
        labelling=json.dumps(experiment.get("labels", {}), sort_keys=True), split=split_hash(run), task=task,
        model=str(metrics.get("model") or experiment.get("model", "")), image_size=experiment.get("image_size"),
        epochs=metrics.get("epochs_trained"), best_val=best,
        test=metrics.get("rmse" if task == "vote-fractions" else "accuracy"), macro_f1=metrics.get("macro_f1"),
        seconds=metrics.get("seconds"), samples_per_s=None if kind != "run" else _median_speed(run),
        parameters=metrics.get("parameters"))


def why_not_comparable(first: Compared, other: Compared) -> str:
    """What `other` does not share with `first` ("" when they are comparable)."""
    if other.dataset != first.dataset:
        return f"dataset {other.dataset!r}, not {first.dataset!r}"
    if other.labelling != first.labelling:
        return f"labelling {other.labelling}, not {first.labelling}"
    if other.split != first.split:
        return (f"another split (split.csv {other.split or 'missing'}, not {first.split or 'missing'}): "
                f"other galaxies were held out")
    return ""


def comparable_groups(items: list[Compared]) -> list[list[Compared]]:
    """The runs grouped by what makes them comparable, in the order first met."""
    groups: dict[tuple[str, str, str | None], list[Compared]] = {}
    for item in items:
        groups.setdefault(item.comparable_key, []).append(item)
    return list(groups.values())


def comparison_frame(items: list[Compared]) -> pd.DataFrame:
    """One row per run with its group number (1 = the first group met), as `compare --csv` writes it."""
    rows: list[dict[str, Any]] = []
    for number, group in enumerate(comparable_groups(items), start=1):
        for item in group:
            rows.append({"group": number, **{k: v for k, v in asdict(item).items() if k != "labelling"},
                         "labelling": item.labelling})
    return pd.DataFrame(rows)
