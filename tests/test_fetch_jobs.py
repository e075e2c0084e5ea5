"""A fetch in the background: started detached, it outlives the command that started it, says how many bytes
arrived, can be stopped (keeping what arrived) and goes on from there; the Datasets pane shows it. Served by a
slow loopback server on 127.0.0.1 in GalaxyMNIST's layout (its source publishes no checksum, so the worker, a
process of its own, fetches the test files as they are)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from test_fetch import Ranged, galaxy_mnist_files

from galaxy_tui.fetching.fetch_jobs import latest_fetch_job, read_fetch_job, start_fetch_job, stop_fetch_job
from galaxy_tui.registry import load_registry
from workspace_fixture import wait_for


class Slow(Ranged):
    """Sends each file 16 KiB at a time with a pause between, recording the ranges asked."""
    drop_after = None  # its own settings, whatever a test of Ranged left on that class
    pause_s = 0.05
    ranges: list[str] = []


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "served"
    served.mkdir()
    galaxy_mnist_files(served, scale=40)
    Slow.folder, Slow.ranges = served, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_a_detached_fetch_outlives_its_command_and_can_be_stopped_and_continued(slow_server: str,
                                                                                 tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    started = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), "fetch",
                              "galaxy-mnist", "--mirror", slow_server, "--detach"], capture_output=True, text=True,
                             timeout=60)
    assert started.returncode == 0 and "in the background" in started.stdout, started.stderr
    job = latest_fetch_job(workspace)
    assert job is not None
    moving = wait_for(lambda: (lambda j: j if j.state == "fetching" and j.done > 0 else None)(
        read_fetch_job(job.folder)), timeout=60)
    assert moving.total > moving.done  # the command has returned; the job goes on, saying how far it got
    stop_fetch_job(job.folder)
    stopped = wait_for(lambda: (lambda j: j if not j.live else None)(read_fetch_job(job.folder)), timeout=30)
    assert stopped.state == "stopped" and "fetch again" in stopped.message
    parts = list((workspace / "data" / ".galaxy-mnist.partial").glob("*"))
    assert parts and not (workspace / "data" / "galaxy-mnist").exists()  # what arrived is kept, no half dataset
    Slow.pause_s = 0.0
    again = start_fetch_job(workspace, "galaxy-mnist", mirror=slow_server)
    done = wait_for(lambda: (lambda j: j if not j.live else None)(read_fetch_job(again)), timeout=60)
    assert done.state == "finished", done.message + (again / "worker.log").read_text()[-2000:]
    assert any("bytes=" in asked for asked in Slow.ranges)  # the rest asked for, not the whole again
    assert load_registry(workspace / "experiments.toml").dataset("galaxy-mnist").kind == "galaxy-mnist-h5"


async def test_the_datasets_pane_shows_a_fetch_and_the_dataset_it_registers(slow_server: str,
                                                                           tmp_path: Path) -> None:
    from galaxy_tui.app.main import GalaxyApp
    from pilot_helpers import NoGpu, screen_text, until
    from workspace_fixture import tiny_workspace
    tiny_workspace(tmp_path, count=100)
    Slow.pause_s = 0.02
    start_fetch_job(tmp_path, "galaxy-mnist", mirror=slow_server)  # started before the app opens
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "fetching galaxy-mnist" in screen_text(app))
        await until(pilot, lambda: "fetch of galaxy-mnist finished" in screen_text(app), timeout=90)
        await until(pilot, lambda: "galaxy-mnist" in app.query_one("#datasets-table").rows)
        await pilot.press("f")
        await until(pilot, lambda: "Fetch which dataset?" in screen_text(app))
        await pilot.press("escape")
