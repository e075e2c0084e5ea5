"""The Results pane's predict dialog, as a person uses it: `p`, a path, Enter; a background job (its own
process) classifies the files; each galaxy opens large with the classes the model gave it. And the job
protocol underneath: a job whose process died without a last word reads as failed."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_jpeg
from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.executors.job_worker import write_status
from galaxy_tui.inference.predict_jobs import latest_job, read_job, start_predict_job
from galaxy_tui.procinfo import boot_id, start_ticks
from trained_runs import REALDATA

pytestmark = pytest.mark.slow


async def test_p_classifies_a_folder_in_the_background_and_opens_each_galaxy_large(demo_run, tmp_path: Path) -> None:  # noqa: ANN001
    from textual.widgets import DataTable, Input

    from galaxy_tui.app.gallery import GalaxyView
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.app.predict_dialog import PredictDialog
    from galaxy_tui.inference.galaxy_sources import file_items
    from galaxy_tui.inference.predicting import predict_items
    from galaxy_tui.inference.servable import load_run
    from pilot_helpers import NoGpu, open_predict_dialog, screen_text, text_of, until
    root, run = demo_run
    folder = tmp_path / "new galaxies"
    folder.mkdir()
    for seed in range(5):
        write_jpeg(folder / f"g{seed}.jpg", seed, size=64)
    (folder / "readme.txt").write_text("not a galaxy")
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await open_predict_dialog(app, pilot, run.id)
        path = app.screen.query_one("#predict-path", Input)
        path.value = str(tmp_path / "nowhere")
        await pilot.press("enter")
        assert "no such file or folder" in text_of(app, "#predict-status")
        path.value = str(folder)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView), timeout=120)
        await until(pilot, lambda: "top classes:" in screen_text(app))  # drawn a frame after it is pushed
        shown = screen_text(app)
        await pilot.press("escape")
        dialog = app.screen
        assert isinstance(dialog, PredictDialog)
        assert "5 classified" in text_of(app, "#predict-status") and "1 skipped" in text_of(app, "#predict-status")
        assert dialog.query_one("#predict-table", DataTable).row_count == 5
        listed = screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, PredictDialog)
    job = latest_job(run.dir)
    assert job is not None and job.state == "finished"
    with job.predictions.open() as handle:
        rows = list(csv.DictReader(handle))
    loaded = load_run(run.dir)  # the same files classified here, in the test's own process
    expected = predict_items(loaded, file_items([folder])[0])
    assert [Path(row["path"]).name for row in rows] == [Path(where).name for where in expected.wheres]
    probabilities = np.array([[float(row[f"p_{c}"]) for c in loaded.outputs] for row in rows])
    np.testing.assert_allclose(probabilities, expected.output_array, atol=2e-5)
    first = rows[0]
    assert Path(first["path"]).name in shown and f"predicted {first['predicted'].replace('_', ' ')}" in shown
    assert "top classes:" in shown
    # Each file says whether it is like the run's training galaxies, as its row of the CSV does (the header whole).
    assert "like training" in listed and "unlike_training" in first
    flags = ["no" if row["unlike_training"] == "True" else "yes" for row in rows]
    table_flags = [next(word for word in line.split() if word in ("no", "yes")) for line in listed.splitlines()
                   if ".jpg" in line]
    assert table_flags == flags
    skipped = (job.folder / "predictions.skipped.csv").read_text()
    assert "readme.txt" in skipped


def test_a_job_whose_processes_died_without_a_word_reads_as_lost(tmp_path: Path) -> None:
    """Simulates a predict job whose supervisor and worker were killed (dead pids on record, no final state)."""
    import socket
    folder = tmp_path / "run" / "predictions" / "20261203-000000"
    folder.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = start_ticks(gone.pid)
    gone.wait()
    atomic_write_json(folder / "supervisor.json", {"worker_pid": gone.pid, "worker_start": ticks,
                                                   "supervisor_pid": gone.pid, "supervisor_start": ticks,
                                                   "boot_id": boot_id()})
    write_status(folder, "predicting", done=3, total=10, message="", executor="local", host=socket.gethostname())
    job = read_job(folder)
    assert job.state == "lost" and not job.live
    write_status(folder, "finished", done=10, total=10, message="10 classified")
    assert read_job(folder).state == "finished"


@pytest.mark.slow
def test_a_predict_job_is_started_and_stopped_by_the_launcher(folder_run, tmp_path: Path) -> None:  # noqa: ANN001
    """Started like any run (supervisor, attempt lock), stopped by TERM: it ends `stopped` at once or at its next
    batch, whichever the TERM meets, and the supervisor records its exit."""
    from galaxy_tui.events import read_events
    from galaxy_tui.executors.local import attempt_running
    from galaxy_tui.inference.predict_jobs import stop_job
    from workspace_fixture import wait_for
    root, run = folder_run
    many = tmp_path / "many"
    for n in range(40):  # 40 copies of the real JPEGs: thousands of galaxies, so the stop lands mid-job
        shutil.copytree(REALDATA, many / str(n), ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    folder = start_predict_job(run.dir, [many], root)
    wait_for(lambda: read_job(folder).state == "predicting", timeout=60, poll=0.05)
    stop_job(folder)
    job = wait_for(lambda: None if (found := read_job(folder)).live else found, timeout=60)
    assert job.state == "stopped" and "stopped after classifying" in job.message, job.message
    wait_for(lambda: not attempt_running(folder), timeout=30)
    assert [e["type"] for e in read_events(folder / "events.jsonl")] == ["stop_requested", "exited"]
    with pytest.raises(GalaxyError, match="is stopped; nothing to stop"):
        stop_job(folder)
