"""Chosen runs' curves and final metrics as one tidy CSV: a row per run and epoch, the run's final
figures repeated on each of its rows (so one pandas.read_csv gives everything)."""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.atomic import atomic_write_bytes
from galaxy_tui.records.notes import read_notes
from galaxy_tui.run_model import RunModel
from galaxy_tui.runs import run_info

COLUMNS = ("run", "experiment", "state", "tags", "epoch", "step", "train_loss", "val_loss", "val_acc", "val_rmse",
           "lr", "epoch_seconds", "test_split", "test_accuracy", "test_loss", "test_macro_f1", "test_rmse",
           "test_baseline_rmse", "best_val_acc", "best_val_rmse", "best_epoch")


def _lr_at(model: RunModel, lr_steps: list[int], step: int) -> float | None:
    """The learning rate of the last optimizer step up to `step` (`lr_steps`: model.lrs' steps)."""
    index = bisect.bisect_right(lr_steps, step) - 1
    return model.lrs[index][1] if index >= 0 else None


def metrics_rows(run_dir: Path) -> list[dict[str, Any]]:
    info = run_info(run_dir)
    model = RunModel.of_run(run_dir)
    final = read_metrics(run_dir) or {}
    common = {"run": info.id, "experiment": info.experiment, "state": info.state,
              "tags": " ".join(read_notes(run_dir).tags), "test_split": final.get("split"),
              "test_accuracy": final.get("accuracy"), "test_loss": final.get("loss"),
              "test_macro_f1": final.get("macro_f1"), "test_rmse": final.get("rmse"),
              "test_baseline_rmse": (final.get("baseline") or {}).get("rmse"),
              f"best_{info.metric}": final.get(f"best_{info.metric}", info.best_metric),
              "best_epoch": final.get("best_epoch")}
    if not model.epochs:
        return [common]
    lr_steps = [s for s, _ in model.lrs]
    return [{**common, "epoch": e.get("epoch"), "step": e.get("step"), "train_loss": e.get("train_loss"),
             "val_loss": e.get("val_loss"), "val_acc": e.get("val_acc"), "val_rmse": e.get("val_rmse"),
             "epoch_seconds": e.get("seconds"),
             "lr": _lr_at(model, lr_steps, int(e["step"])) if e.get("step") is not None else None}
            for e in model.epochs]


def metrics_csv(run_dirs: Iterable[Path]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for run_dir in run_dirs:
        writer.writerows(metrics_rows(run_dir))
    return buffer.getvalue()


def export_metrics(run_dirs: Iterable[Path], out: Path) -> int:
    """Write the CSV to `out` (whole or not at all); return the number of rows."""
    text = metrics_csv(run_dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, text.encode())
    return text.count("\n") - 1
