"""Predict jobs the workbench starts: a folder under the run (`predictions/<time>/`) holding the request,
a status the worker rewrites as it goes, the predictions CSV and the worker's log. The job runs in its own
session, so it outlives the UI and SSH. Stdlib only: the UI starts and reads jobs without importing torch."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.procinfo import boot_id, is_alive, start_ticks

JOB_FINAL_STATES = ("finished", "failed")


@dataclass(frozen=True)
class PredictJob:
    folder: Path
    state: str  # queued | predicting | finished | failed
    done: int
    total: int
    message: str

    @property
    def live(self) -> bool:
        return self.state not in JOB_FINAL_STATES

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.csv"

    @property
    def paths(self) -> list[str]:
        request = read_json(self.folder / "request.json") or {}
        return [str(path) for path in request.get("paths", [])]


def jobs_folder(run_dir: Path) -> Path:
    return run_dir / "predictions"


def write_job_status(folder: Path, state: str, **fields: object) -> None:
    atomic_write_json(folder / "status.json", {**(read_json(folder / "status.json") or {}), "state": state,
                                               "updated": time.time(), **fields})


def start_predict_job(run_dir: Path, paths: list[Path], cwd: Path) -> Path:
    """A new job classifying `paths` (files or folders) with the run's best model; returns its folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, number = jobs_folder(run_dir) / stamp, 1
    while folder.exists():
        number += 1
        folder = jobs_folder(run_dir) / f"{stamp}-{number}"
    folder.mkdir(parents=True)
    atomic_write_json(folder / "request.json", {"paths": [str(path) for path in paths], "requested": time.time()})
    write_job_status(folder, "queued", done=0, total=0, message="")
    with open(folder / "worker.log", "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "galaxy_tui.inference.predict_worker", str(folder)],
                                  start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=cwd)
    atomic_write_json(folder / "process.json", {"pid": worker.pid, "start": start_ticks(worker.pid),
                                                "boot_id": boot_id()})
    _started[folder] = worker
    return folder


# This process's own jobs: a child that has exited stays a zombie until waited for, so ask it directly.
_started: dict[Path, subprocess.Popen[bytes]] = {}


def _running(folder: Path) -> bool:
    if folder in _started:
        return _started[folder].poll() is None
    process = read_json(folder / "process.json") or {}
    return process.get("boot_id") == boot_id() and is_alive(process.get("pid"), process.get("start"))


def read_job(folder: Path) -> PredictJob:
    """The job as its status says, except that one whose process has gone without a final state failed."""
    status = read_json(folder / "status.json") or {}
    state, message = str(status.get("state", "failed")), str(status.get("message", ""))
    if state not in JOB_FINAL_STATES and not _running(folder):
        state = "failed"
        message = f"the predict job ended without finishing; see {folder / 'worker.log'}"
    return PredictJob(folder, state, int(status.get("done", 0)), int(status.get("total", 0)), message)


def latest_job(run_dir: Path) -> PredictJob | None:
    folders = sorted(path for path in jobs_folder(run_dir).glob("*") if (path / "status.json").exists())
    return read_job(folders[-1]) if folders else None
