"""Result folders derived from runs (an ensemble of runs, a booster on a run's features): listed and compared
like a run, made of the source run's split and frozen configuration plus a section saying what was derived."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from galaxy_tui.atomic import atomic_write_bytes, atomic_write_json
from galaxy_tui.frozen_run import DERIVED, read_config
from galaxy_tui.runs import RunInfo, new_run_dir, run_info
from galaxy_tui.task_kinds import kind_of_metrics


@contextmanager
def derived_folder(runs_dir: Path, name: str, source: Path, section: str, what: dict[str, Any]) -> Iterator[Path]:
    """A new folder `name-<stamp>` holding the source's split.csv and its config.toml with `[section] = what`;
    removed again if the body fails, so no half-written result is ever listed."""
    folder = new_run_dir(runs_dir, name)
    try:
        shutil.copyfile(source / "split.csv", folder / "split.csv")
        config = read_config(source)
        config["run"] = {**config["run"], "experiment": name, "id": folder.name}
        config[section] = what
        atomic_write_bytes(folder / "config.toml", tomli_w.dumps(config).encode())
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def finish_derived(folder: Path, name: str, metrics: dict[str, Any], started: float, message: str) -> RunInfo:
    """status.json last: from here the folder is a finished result in the runs list, its best figure the
    validation accuracy (or RMSE, for vote fractions) as a trained run's."""
    kind = kind_of_metrics(metrics)
    atomic_write_json(folder / "status.json", {
        "experiment": name, "state": "finished", "attempt": 1, "epoch": 0, "epochs": 0,
        "best_metric": metrics.get(f"best_{kind.validation}"), "metric": kind.validation,
        f"test_{kind.headline}": metrics[kind.headline],
        "started": started, "updated": time.time(), "message": message})
    return run_info(folder)


def trees_text(trees: int | list[int] | tuple[int, ...]) -> str:
    """A booster's tree count: one (a classifier), or one per answer (vote fractions)."""
    counts = [trees] if isinstance(trees, int) else list(trees)
    if len(counts) == 1:
        return f"{counts[0]} trees"
    return f"{sorted(counts)[len(counts) // 2]} trees (median) for each of {len(counts)} answers"


def is_derived(metrics: dict[str, Any] | None) -> bool:
    return bool(metrics) and metrics.get("kind") in DERIVED


def derived_from(metrics: dict[str, Any]) -> str:
    """What a result not trained itself was made of (an ensemble, a booster on a run's features)."""
    if metrics.get("kind") == "boosted":
        boosted = metrics.get("boosted") or {}
        return f"{boosted.get('booster')}, {trees_text(boosted.get('trees') or [])} on the features of " \
               f"{boosted.get('run')}"
    ensemble = metrics.get("ensemble") or {}
    return f"ensemble of {len(ensemble.get('members', []))}, {ensemble.get('scheme', '?')} weights"
