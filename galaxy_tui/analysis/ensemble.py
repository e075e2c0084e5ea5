"""Ensembles of finished runs: their saved validation and test probabilities (or vote fractions) averaged with
weights computed on validation only, saved as a result folder of kind `ensemble` beside the runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from galaxy_tui.analysis.calibration import mean_log_loss
from galaxy_tui.analysis.classification_results import write_results
from galaxy_tui.analysis.comparison import comparability
from galaxy_tui.analysis.derived_results import derived_folder, finish_derived
from galaxy_tui.analysis.fraction_results import (
    derived_classification,
    errors,
    mean_squared_error,
    write_fraction_results,
)
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.analysis.run_galaxies import RunGalaxies, run_galaxies
from galaxy_tui.data.vote_tree import answer_errors
from galaxy_tui.errors import GalaxyError
from galaxy_tui.runs import RunInfo
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS, TaskKind, kind_of_metrics

SCHEMES = ("equal", "val-accuracy", "inverse-val-mae", "inverse-val-rmse")


@dataclass
class Member:
    run: RunInfo
    task: TaskKind
    outputs: list[str]  # the classes, or the answers
    metrics: dict[str, Any]  # results/metrics.json
    val: pd.DataFrame  # val_predictions.csv
    test: pd.DataFrame  # predictions.csv

    def _values(self, frame: pd.DataFrame, order: pd.Index, prefix: str) -> np.ndarray:
        return frame.set_index("id").loc[order, [f"{prefix}{c}" for c in self.outputs]].to_numpy(dtype=np.float64)

    def predicted(self, frame: pd.DataFrame, order: pd.Index) -> np.ndarray:
        """Class probabilities (p_<class>) or answers (pred_<answer>), in the order of the first member's
        galaxies."""
        return self._values(frame, order, self.task.predicted_prefix)

    def truth(self, frame: pd.DataFrame, order: pd.Index) -> np.ndarray:
        """Class indices, or the catalogue's answers (NaN where it has none)."""
        return _COMBINING[self.task.name].truth(self, frame, order)


def _class_indices(member: Member, frame: pd.DataFrame, order: pd.Index) -> np.ndarray:
    return frame.set_index("id").loc[order, "true"].map({c: k for k, c in enumerate(member.outputs)}).to_numpy()


def _answers(member: Member, frame: pd.DataFrame, order: pd.Index) -> np.ndarray:
    return member._values(frame, order, "true_")


def _read_predictions(run: RunInfo, name: str) -> pd.DataFrame:
    path = run.dir / "results" / name
    if not path.exists():
        raise GalaxyError(f"{run.id} has no results/{name}: it was evaluated before runs saved their validation "
                          f"predictions; `galaxy-tui evaluate {run.id}` evaluates it again.")
    return pd.read_csv(path, dtype={"id": str})


def load_member(run: RunInfo) -> Member:
    metrics = read_metrics(run.dir)
    if run.state != "finished" or not metrics:
        raise GalaxyError(f"{run.id} is {run.state}: only finished runs can join an ensemble.")
    task = kind_of_metrics(metrics)
    outputs = metrics.get(task.outputs_key)
    if not outputs:
        raise GalaxyError(f"{run.id}: its results/metrics.json's `{task.outputs_key}` is missing or damaged; "
                          f"`galaxy-tui evaluate {run.id}` writes it again.")
    return Member(run, task, list(outputs), metrics,
                  _read_predictions(run, "val_predictions.csv"), _read_predictions(run, "predictions.csv"))


def check_members(members: list[Member]) -> None:
    """Two or more distinct runs, comparable, with the same outputs and the same galaxies."""
    if len({m.run.id for m in members}) < 2:
        raise GalaxyError("an ensemble needs at least two different runs.")
    first = members[0]
    shared = comparability(first.run)
    for member in members[1:]:
        reason = shared.why_not(comparability(member.run))
        if reason:
            raise GalaxyError(f"{member.run.id} cannot join {first.run.id}: {reason}.")
        if member.task != first.task:
            raise GalaxyError(f"{member.run.id} is a {member.task.name} run, {first.run.id} a {first.task.name} run.")
        if member.outputs != first.outputs:
            raise GalaxyError(f"{member.run.id} has {first.task.outputs_word} {member.outputs}, {first.run.id} "
                              f"{first.outputs}.")
        for part in ("val", "test"):
            if set(getattr(member, part)["id"]) != set(getattr(first, part)["id"]):
                raise GalaxyError(f"{member.run.id} was measured on other {part} galaxies than {first.run.id}.")


def _validation_figure(scheme: str, predicted: np.ndarray, truth: np.ndarray, task: TaskKind) -> float:
    """The figure a member is weighted by: its accuracy, or the inverse of its error against the truth
    (one-hot classes, or the catalogue's answers)."""
    if scheme == "val-accuracy":
        return float((predicted.argmax(1) == truth).mean())
    target = _COMBINING[task.name].target(truth, predicted.shape[1])
    rmse, mae = answer_errors(predicted, target) or (np.inf, np.inf)
    return 1.0 / max(mae if scheme == "inverse-val-mae" else rmse, 1e-9)


def member_weights(members: list[Member], scheme: str, order: pd.Index) -> np.ndarray:
    """Weights summing to 1, from validation figures only."""
    if scheme not in SCHEMES:
        raise GalaxyError(f"--weights {scheme!r}: choose one of {', '.join(SCHEMES)}.")
    task = members[0].task
    refusal = _COMBINING[task.name].refused.get(scheme)
    if refusal:
        raise GalaxyError(f"--weights {scheme}: {refusal}")
    if scheme == "equal":
        raw = np.ones(len(members))
    else:
        truth = members[0].truth(members[0].val, order)
        raw = np.array([_validation_figure(scheme, m.predicted(m.val, order), truth, task) for m in members])
    if raw.sum() <= 0:
        raise GalaxyError(f"--weights {scheme}: every member scored 0 on validation; use --weights equal.")
    return raw / raw.sum()


def build_ensemble(runs_dir: Path, runs: list[RunInfo], scheme: str) -> RunInfo:
    """Combine the runs' saved predictions, write the ensemble's folder, and return it (listed like a run)."""
    members = [load_member(run) for run in runs]
    check_members(members)
    first = members[0]
    val_order, test_order = pd.Index(first.val["id"]), pd.Index(first.test["id"])
    weights = member_weights(members, scheme, val_order)

    def combined(part: str, order: pd.Index) -> Measured:
        frame = getattr(first, part)
        mean = sum(w * m.predicted(getattr(m, part), order) for w, m in zip(weights, members))
        return Measured(order.to_numpy(), first.truth(frame, order), np.asarray(mean))

    what = {"scheme": scheme, "members": [m.run.id for m in members],
            "weights": [round(float(w), 6) for w in weights]}
    with derived_folder(runs_dir, "ensemble", first.run.dir, "ensemble", what) as folder:
        started = time.time()
        galaxies = run_galaxies(first.run)
        threshold = galaxies.experiment.labels.threshold if galaxies.dataset.has_votes else None  # None: no rule
        metrics = _COMBINING[first.task.name].write(
            folder, galaxies, first, combined("val", val_order), combined("test", test_order),
            {"kind": "ensemble", "ensemble": what, "threshold": threshold,
             "model": f"ens/{scheme}", "seconds": round(time.time() - started, 1)})
        return finish_derived(folder, "ensemble", metrics, started,
                              f"ensemble ({scheme}) of {', '.join(m.run.id for m in members)}")


def _write_classification(folder: Path, galaxies: RunGalaxies, first: Member, val: Measured, test: Measured,
                          extra: dict[str, Any]) -> dict[str, Any]:
    extra["best_val_acc"] = round(float((val.predicted.argmax(1) == val.truth).mean()), 5)
    return write_results(folder / "results", tuple(first.outputs), test, mean_log_loss(test.predicted, test.truth),
                         galaxies.images, galaxies.rows(test.ids, first.run.id), galaxies.experiment.mistakes,
                         extra, str(first.metrics.get("split", "test")), val=val)


def _write_fractions(folder: Path, galaxies: RunGalaxies, first: Member, val: Measured, test: Measured,
                     extra: dict[str, Any]) -> dict[str, Any]:
    tree = galaxies.chosen.tree
    assert tree is not None
    rows = galaxies.rows(test.ids, first.run.id)
    extra["best_val_rmse"] = errors(val.predicted, val.truth)[0]
    derived = derived_classification(tree, galaxies.dataset.classes, galaxies.chosen.labels[rows], test.predicted,
                                     galaxies.experiment.labels)
    baseline = np.array(first.metrics["baseline"]["answers"])  # the members share the training galaxies
    return write_fraction_results(folder / "results", tree, test, baseline,
                                  mean_squared_error(test.predicted, test.truth), galaxies.images, rows,
                                  galaxies.experiment.mistakes, {**extra, "loss_function": "mse"},
                                  str(first.metrics.get("split", "test")), derived, val)


@dataclass(frozen=True)
class _Combining:
    """What combining one task's members needs: their truth, the target a member's error is measured against,
    the weightings that make no sense for it, and how the ensemble's results are written."""
    truth: Callable[[Member, pd.DataFrame, pd.Index], np.ndarray]
    target: Callable[[np.ndarray, int], np.ndarray]
    refused: dict[str, str]
    write: Callable[[Path, RunGalaxies, Member, Measured, Measured, dict[str, Any]], dict[str, Any]]


_COMBINING = {
    CLASSIFICATION.name: _Combining(_class_indices, lambda truth, n: np.eye(n)[truth], {}, _write_classification),
    VOTE_FRACTIONS.name: _Combining(_answers, lambda truth, _n: truth, {
        "val-accuracy": "vote-fraction runs have no accuracy; use inverse-val-rmse (or inverse-val-mae, equal)."},
        _write_fractions),
}
