"""The newest background fetch of the workspace under the Datasets list: what it fetches, a progress bar with the
megabytes, and how it ended. It reads the job's folder once a second, so a fetch started before the app opened
(or by `galaxy-tui fetch --detach`) shows here too; the dataset joins the list when the fetch registers it."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from galaxy_tui.fetching.fetch_jobs import FetchJob, latest_fetch_job

POLL_S = 1.0


def fetch_line(job: FetchJob) -> str:
    sizes = f"{job.done / 1e6:,.1f} of {job.total / 1e6:,.1f} MB" if job.total else f"{job.done / 1e6:,.1f} MB"
    if job.live:
        return f"fetching {job.name}: {sizes}" + (f" · {job.message}" if job.message else "")
    return f"fetch of {job.name} {job.state}" + (f": {job.message}" if job.message else "")


class FetchProgress(Vertical):
    def __init__(self, workspace: Path):
        super().__init__(id="fetch-progress")
        self.workspace = workspace
        self.job: FetchJob | None = None
        self.display = False  # until a fetch is found: the pane lays out as before

    def compose(self) -> ComposeResult:
        yield Static("", id="fetch-line")
        yield ProgressBar(id="fetch-bar", show_eta=False)

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(POLL_S, self.poll)

    def poll(self) -> None:
        job = latest_fetch_job(self.workspace)
        ended_now = self.job is not None and self.job.live and job is not None and not job.live
        self.job = job
        self.display = job is not None
        if job is None:
            return
        self.query_one("#fetch-line", Static).update(fetch_line(job))
        bar = self.query_one("#fetch-bar", ProgressBar)
        bar.display = job.live
        bar.update(total=job.total or None, progress=job.done)
        if ended_now:
            self.app.notify(fetch_line(job), severity="information" if job.state == "finished" else "error",
                            timeout=10)
