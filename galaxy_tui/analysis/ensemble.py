"""Ensembles of finished classification runs: their saved validation and test probabilities averaged with
weights computed on validation only, saved as a result folder of kind `ensemble` beside the runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galaxy_tui.analysis.calibration import mean_log_loss
from galaxy_tui.analysis.classification_results import write_results
from galaxy_tui.analysis.comparison import compared, why_not_comparable
from galaxy_tui.analysis.derived_results import derived_folder, finish_derived
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.atomic import read_json
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import parse_frozen
from galaxy_tui.runs import RunInfo, read_config

SCHEMES = ("equal", "val-accuracy", "inverse-val-mae")


@dataclass
class Member:
    run: RunInfo
    classes: list[str]
    val: pd.DataFrame  # val_predictions.csv
    test: pd.DataFrame  # predictions.csv

    def probabilities(self, frame: pd.DataFrame, order: pd.Index) -> np.ndarray:
        """p_<class> columns in the order of the first member's galaxies."""
        return frame.set_index("id").loc[order, [f"p_{c}" for c in self.classes]].to_numpy(dtype=np.float64)


def _read_predictions(run: RunInfo, name: str) -> pd.DataFrame:
    path = run.dir / "results" / name
    if not path.exists():
        raise GalaxyError(f"{run.id} has no results/{name}: it was evaluated before runs saved their validation "
                          f"probabilities; `galaxy-tui train {run.experiment} --skip` evaluates it again.")
    return pd.read_csv(path, dtype={"id": str})


def load_member(run: RunInfo) -> Member:
    metrics = read_json(run.dir / "results" / "metrics.json")
    if run.state != "finished" or not metrics:
        raise GalaxyError(f"{run.id} is {run.state}: only finished runs can join an ensemble.")
    if "rmse" in metrics:
        raise GalaxyError(f"{run.id} is a vote-fraction run: ensembles combine classification runs for now.")
    return Member(run, list(metrics["classes"]), _read_predictions(run, "val_predictions.csv"),
                  _read_predictions(run, "predictions.csv"))


def check_members(members: list[Member]) -> None:
    """Two or more distinct runs, comparable, with the same classes and the same galaxies."""
    if len({m.run.id for m in members}) < 2:
        raise GalaxyError("an ensemble needs at least two different runs.")
    first = compared(members[0].run)
    for member in members[1:]:
        reason = why_not_comparable(first, compared(member.run))
        if reason:
            raise GalaxyError(f"{member.run.id} cannot join {members[0].run.id}: {reason}.")
        if member.classes != members[0].classes:
            raise GalaxyError(f"{member.run.id} has classes {member.classes}, {members[0].run.id} "
                              f"{members[0].classes}.")
        for part in ("val", "test"):
            if set(getattr(member, part)["id"]) != set(getattr(members[0], part)["id"]):
                raise GalaxyError(f"{member.run.id} was measured on other {part} galaxies than "
                                  f"{members[0].run.id}.")


def member_weights(members: list[Member], scheme: str, val_truth: np.ndarray, order: pd.Index) -> np.ndarray:
    """Weights summing to 1, from validation figures only."""
    if scheme not in SCHEMES:
        raise GalaxyError(f"--weights {scheme!r}: choose one of {', '.join(SCHEMES)}.")
    if scheme == "equal":
        raw = np.ones(len(members))
    else:
        figures = []
        for member in members:
            probabilities = member.probabilities(member.val, order)
            if scheme == "val-accuracy":
                figures.append(float((probabilities.argmax(1) == val_truth).mean()))
            else:
                one_hot = np.eye(probabilities.shape[1])[val_truth]
                figures.append(1.0 / max(float(np.abs(probabilities - one_hot).mean()), 1e-9))
        raw = np.array(figures)
    if raw.sum() <= 0:
        raise GalaxyError(f"--weights {scheme}: every member scored 0 on validation; use --weights equal.")
    return raw / raw.sum()


class DatasetImages:
    """The dataset's images by row, read when a mistake's thumbnail is drawn."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __getitem__(self, row: int) -> np.ndarray:
        return self.dataset.read_image(self.dataset.frame["ref"].iloc[row])


def _dataset_rows(run: RunInfo, ids: pd.Index) -> tuple[DatasetImages, np.ndarray]:
    config = read_config(run.dir)
    _, spec = parse_frozen(run.dir / "config.toml", config, Path(config["run"]["workspace"]))
    dataset = load_dataset(spec, Path(config["run"]["cache_dir"]))
    positions = pd.Series(np.arange(len(dataset.frame)), index=dataset.frame["id"].astype(str))
    missing = ids.difference(positions.index)
    if len(missing):
        raise GalaxyError(f"dataset {spec.name!r} no longer has galaxies {list(missing[:3])} that "
                          f"{run.id} measured; the catalogue changed since.")
    return DatasetImages(dataset), positions.loc[ids].to_numpy()


def build_ensemble(runs_dir: Path, runs: list[RunInfo], scheme: str) -> RunInfo:
    """Combine the runs' saved probabilities, write the ensemble's folder, and return it (listed like a run)."""
    members = [load_member(run) for run in runs]
    check_members(members)
    first = members[0]
    classes = first.classes
    val_order, test_order = pd.Index(first.val["id"]), pd.Index(first.test["id"])
    index = {name: k for k, name in enumerate(classes)}
    val_truth = first.val["true"].map(index).to_numpy()
    test_truth = first.test["true"].map(index).to_numpy()
    weights = member_weights(members, scheme, val_truth, val_order)
    val_p = sum(w * m.probabilities(m.val, val_order) for w, m in zip(weights, members))
    test_p = sum(w * m.probabilities(m.test, test_order) for w, m in zip(weights, members))
    what = {"scheme": scheme, "members": [m.run.id for m in members],
            "weights": [round(float(w), 6) for w in weights]}
    with derived_folder(runs_dir, "ensemble", first.run.dir, "ensemble", what) as folder:
        return _write_ensemble(folder, members, what, classes, Measured(val_order.to_numpy(), val_truth, val_p),
                               Measured(test_order.to_numpy(), test_truth, test_p))


def _write_ensemble(folder: Path, members: list[Member], what: dict[str, Any], classes: list[str],
                    val: Measured, test: Measured) -> RunInfo:
    first = members[0].run
    started = time.time()
    config = read_config(folder)
    first_metrics = read_json(first.dir / "results" / "metrics.json") or {}
    images, rows = _dataset_rows(first, pd.Index(test.ids))
    val_accuracy = float((val.predicted.argmax(1) == val.truth).mean())
    loss = mean_log_loss(test.predicted, test.truth)
    extra = {"kind": "ensemble", "ensemble": what, "best_val_acc": round(val_accuracy, 5),
             "threshold": config["experiment"]["labels"]["threshold"],
             "model": f"ens/{what['scheme']}", "seconds": round(time.time() - started, 1)}
    metrics = write_results(folder / "results", tuple(classes), test, loss, images, rows,
                            int(config["experiment"].get("mistakes", 24)), extra,
                            str(first_metrics.get("split", "test")), val=val)
    return finish_derived(folder, "ensemble", val_accuracy, metrics["accuracy"], started,
                          f"ensemble ({what['scheme']}) of {', '.join(m.run.id for m in members)}")
