"""Predict jobs the workbench (or `galaxy-tui predict --detach`) starts: a folder under the run
(`predictions/<time>/`) holding the request, the status the worker rewrites as it goes, the predictions CSV and
the worker's log. They start through the same launcher as every run (executors/jobs.py): here in a session of
their own, so they outlive the UI and SSH, or as a Slurm job; they can be stopped. Torch-free: the UI starts and
reads jobs without importing torch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES
from galaxy_tui.executors import jobs
from galaxy_tui.executors.local import number
from galaxy_tui.registry import SlurmSettings


@dataclass(frozen=True)
class PredictJob:
    folder: Path
    state: str  # submitted | pending | queued | predicting | finished | stopped | failed | killed | lost
    done: int
    total: int
    message: str

    @property
    def live(self) -> bool:
        return self.state not in (*FINAL_STATES, "lost")

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.csv"

    @property
    def paths(self) -> list[str]:
        request = read_json(self.folder / "request.json") or {}
        return [str(path) for path in request.get("paths", [])]


def jobs_folder(run_dir: Path) -> Path:
    return run_dir / "predictions"


def start_predict_job(run_dir: Path, paths: list[Path], workspace: Path, executor: str = "local",
                      slurm: SlurmSettings | None = None) -> Path:
    """A new job classifying `paths` (files or folders) with the run's best model; returns its folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, number = jobs_folder(run_dir) / stamp, 1
    while folder.exists():
        number += 1
        folder = jobs_folder(run_dir) / f"{stamp}-{number}"
    folder.mkdir(parents=True)
    atomic_write_json(folder / "request.json", {"paths": [str(path) for path in paths], "requested": time.time()})
    jobs.start(folder, jobs.JobSpec(jobs.PREDICT_WORKER, "predict", 1, 1, workspace, executor, slurm),
               lambda _previous: {"done": 0, "total": 0, "run": run_dir.name})
    return folder


def read_job(folder: Path) -> PredictJob:
    """The job as its executor tells it: a job whose process has gone without a final state is `lost`, one whose
    Slurm job ended says how."""
    status = read_json(folder / "status.json") or {}
    state, message, reason = jobs.state(folder, status)
    if reason:
        message = f"waiting in Slurm's queue: {reason}"
    return PredictJob(folder, state, int(number(status, "done")), int(number(status, "total")), message)


def stop_job(folder: Path) -> None:
    """Ask the job's worker to stop: it ends `stopped` at its next batch, saying how far it got."""
    job = read_job(folder)
    if not job.live:
        raise GalaxyError(f"the predict job {folder.name} is {job.state}; nothing to stop.")
    jobs.stop(folder, read_json(folder / "status.json") or {})


def latest_job(run_dir: Path) -> PredictJob | None:
    folders = sorted(path for path in jobs_folder(run_dir).glob("*") if (path / "status.json").exists())
    return read_job(folders[-1]) if folders else None
