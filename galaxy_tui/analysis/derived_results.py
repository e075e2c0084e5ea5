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
from galaxy_tui.runs import RunInfo, new_run_dir, read_config, run_info


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


def finish_derived(folder: Path, name: str, val_accuracy: float, test_accuracy: float, started: float,
                   message: str) -> RunInfo:
    """status.json last: from here the folder is a finished result in the runs list."""
    atomic_write_json(folder / "status.json", {
        "experiment": name, "state": "finished", "attempt": 1, "epoch": 0, "epochs": 0,
        "best_metric": round(val_accuracy, 5), "metric": "val_acc", "test_accuracy": test_accuracy,
        "started": started, "updated": time.time(), "message": message})
    return run_info(folder)
