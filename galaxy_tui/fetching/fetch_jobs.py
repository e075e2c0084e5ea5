"""A fetch in the background (`galaxy-tui fetch NAME --detach`, or `f` in the Datasets pane): a folder under the
workspace (`fetches/<name>-<time>/`) holding the request and the status its worker rewrites as the bytes arrive,
started through the same launcher as every run, so it outlives the UI and SSH and can be stopped; the pane shows
the newest one's progress when it opens again. Torch-free."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES
from galaxy_tui.executors import jobs
from galaxy_tui.executors.local import number

FOLDER = "fetches"
FETCH_WORKER = "galaxy_tui.fetching.fetch_worker"


@dataclass(frozen=True)
class FetchJob:
    folder: Path
    name: str
    state: str  # queued | fetching | finished | stopped | failed | killed | lost
    done: int   # bytes so far, over every file
    total: int  # bytes in all (0: not known yet)
    message: str

    @property
    def live(self) -> bool:
        return self.state not in (*FINAL_STATES, "lost")

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


def start_fetch_job(workspace: Path, name: str, to: Path | None = None, mirror: str | None = None) -> Path:
    """A new job fetching `name`; refused while another fetch of it is under way."""
    running = [job for job in fetch_jobs(workspace) if job.name == name and job.live]
    if running:
        raise GalaxyError(f"{name} is being fetched already ({running[0].folder}); wait for it or stop it.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, count = workspace / FOLDER / f"{name}-{stamp}", 1
    while folder.exists():
        count += 1
        folder = workspace / FOLDER / f"{name}-{stamp}-{count}"
    folder.mkdir(parents=True)
    atomic_write_json(folder / "request.json", {"name": name, "to": str(to) if to else None, "mirror": mirror,
                                                "workspace": str(workspace), "requested": time.time()})
    jobs.start(folder, jobs.JobSpec(FETCH_WORKER, "fetch", 1, 1, workspace),
               lambda _previous: {"name": name, "done": 0, "total": 0})
    return folder


def read_fetch_job(folder: Path) -> FetchJob:
    status = read_json(folder / "status.json") or {}
    state, message, _reason = jobs.state(folder, status)
    return FetchJob(folder, str(status.get("name", folder.name)), state, int(number(status, "done")),
                    int(number(status, "total")), message)


def fetch_jobs(workspace: Path) -> list[FetchJob]:
    """Every fetch job of the workspace, oldest first."""
    folders = sorted((workspace / FOLDER).glob("*/status.json"), key=lambda path: path.stat().st_mtime)
    return [read_fetch_job(path.parent) for path in folders]


def latest_fetch_job(workspace: Path) -> FetchJob | None:
    found = fetch_jobs(workspace)
    return found[-1] if found else None


def stop_fetch_job(folder: Path) -> None:
    job = read_fetch_job(folder)
    if not job.live:
        raise GalaxyError(f"the fetch {folder.name} is {job.state}; nothing to stop.")
    jobs.stop(folder, read_json(folder / "status.json") or {})
