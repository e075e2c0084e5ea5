"""One launcher for every job. A job is a folder — a run (training, resuming, evaluating, boosting) or a predict job
under a run — holding its status.json, events.jsonl and logs; an executor starts the job's worker (here: a
supervisor in its own session; or a Slurm batch job), tells whether it lives and why not, and stops it (TERM, so
the worker ends its step, checkpoints or writes what it has, and says `stopped`).

Every start goes through `start`: the previous attempt's processes must have exited first (the attempt lock), and
a job that cannot start is `failed` with the reason, never left `queued`. Torch-free."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES
from galaxy_tui.executors import local, slurm
from galaxy_tui.registry import SlurmSettings

TRAIN_WORKER = slurm.TRAIN_WORKER
PREDICT_WORKER = "galaxy_tui.inference.predict_worker"


@dataclass(frozen=True)
class JobSpec:
    """What to start: the worker module, its mode (the training worker's --mode), how many ranks, where."""
    module: str
    mode: str
    attempt: int
    devices: int
    workspace: Path
    executor: str = "local"
    slurm: SlurmSettings | None = None


def _command(folder: Path, spec: JobSpec) -> list[str]:
    if spec.module == TRAIN_WORKER:
        return local.worker_argv(folder, spec.mode, spec.devices)
    return [sys.executable, "-m", spec.module, str(folder)]


def start(folder: Path, spec: JobSpec, fields: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> None:
    """Write the attempt's first status and start its worker. Waits for a previous attempt still exiting (then
    refuses, writing nothing). `fields` adds to the status what the job records of the previous attempt's (read
    once that attempt has exited). A start that fails leaves the job `failed` with the reason."""
    lock_fd = local.take_attempt_lock(folder) if spec.executor == "local" else None
    try:
        previous = _status(folder)
        # The previous attempt's pids and job go first: a reader must never see `queued` beside dead pids (lost).
        (folder / "supervisor.json").unlink(missing_ok=True)
        (folder / slurm.RECORD).unlink(missing_ok=True)
        now = time.time()
        atomic_write_json(folder / "status.json", {
            **previous, **fields(previous), "state": "submitted" if spec.executor == "slurm" else "queued",
            "attempt": spec.attempt, "mode": spec.mode, "updated": now, "started": previous.get("started", now),
            "message": "", "host": socket.gethostname(), "executor": spec.executor})
        env = local.worker_environment(spec.devices, dict(os.environ))
        try:
            if lock_fd is not None:
                try:
                    local.start(folder, _command(folder, spec), spec.attempt, spec.workspace, env, lock_fd)
                except GalaxyError as exc:
                    raise GalaxyError(f"{folder.name}: {exc}. Is galaxy-tui installed for this Python (pip install "
                                      f"-e . in the project)?") from None
            else:
                job = slurm.submit(folder, spec.mode, spec.attempt, spec.slurm or SlurmSettings(), spec.devices,
                                   spec.workspace, env, spec.module)
                atomic_write_json(folder / "status.json", {**_status(folder), "slurm_job": job, "updated": time.time()})
        except GalaxyError as exc:
            atomic_write_json(folder / "status.json", {**_status(folder), "state": "failed", "message": str(exc),
                                                       "updated": time.time()})
            raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # the supervisor and the worker hold it now


def _status(folder: Path) -> dict[str, Any]:
    return read_json(folder / "status.json") or {}


def state(folder: Path, status: dict[str, Any]) -> slurm.Told:
    """The job's state and what to say about it: status.json's, checked against its processes (local) or what
    Slurm tells."""
    if status.get("executor") == "slurm":
        told = slurm.view(folder, status)
        if told is not None:
            return told
    written = str(status.get("state", "lost"))
    if written in FINAL_STATES:
        return slurm.Told(written, str(status.get("message") or ""))
    return slurm.Told(*local.state(folder, status))


def stop(folder: Path, status: dict[str, Any]) -> None:
    """TERM to the job's worker (a Slurm job: to its tasks; a pending one leaves the queue)."""
    if status.get("executor") == "slurm":
        slurm.cancel(folder)
    else:
        local.stop(folder)


def wait_for_end(folder: Path, timeout_s: float) -> bool:
    """Wait until the job's attempt has ended and its processes are gone, so that the next start can be at once;
    False if it still runs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while state(folder, _status(folder)).state not in (*FINAL_STATES, "lost"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return local.wait_for_exit(folder, max(0.0, deadline - time.monotonic()))
