"""A run as JSON for scripts (`galaxy-tui runs --json`, `show --json`): its state and figures with their names,
whole ids and unix times, null where nothing is known."""

from __future__ import annotations

from typing import Any

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.records.notes import RunNotes
from galaxy_tui.runs import RunInfo


def run_json(run: RunInfo, notes: RunNotes) -> dict[str, Any]:
    return {"id": run.id, "experiment": run.experiment, "state": run.state, "message": run.message or None,
            "waits_for": run.reason or None, "attempt": run.attempt, "epoch": run.epoch,
            "epochs": run.epochs or None, "step": run.step, "best": run.best_metric, "best_measures": run.metric,
            "started": run.started or None, "updated": run.updated or None, "slurm_job": run.job or None,
            "dir": str(run.dir), "tags": list(notes.tags), "note": notes.note or None}


def shown_json(run: RunInfo, notes: RunNotes) -> dict[str, Any]:
    """The run and its results/metrics.json (damaged figures left out, and named)."""
    damaged: list[str] = []
    metrics = read_metrics(run.dir, damaged)
    return {"run": run_json(run, notes), "metrics": metrics, "damaged": damaged}
