"""Work is never lost or silently redone: a resume needs its last checkpoint, a stopped re-evaluation leaves the
run finished with its results."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import launch, reevaluate, run_info, stop_run
from workspace_fixture import tiny_workspace, wait_final, wait_for


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_resume_without_last_pt_refuses_and_keeps_best_pt(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    best = run.dir / "checkpoints" / "best.pt"
    kept = digest(best)
    (run.dir / "checkpoints" / "last.pt").unlink()
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=3))
    with pytest.raises(GalaxyError, match="cannot be resumed.*--skip evaluates best.pt.*--restart"):
        launch(load_registry(registry.path), "tiny", "resume")
    assert digest(best) == kept and run_info(run.dir).attempt == 1


@pytest.mark.slow
def test_a_worker_asked_to_resume_without_last_pt_fails_and_keeps_best_pt(tmp_path: Path) -> None:
    """Simulates last.pt vanishing between the launch's check and the worker's start."""
    from galaxy_tui.train.worker import main as worker_main
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    kept = digest(run.dir / "checkpoints" / "best.pt")
    (run.dir / "checkpoints" / "last.pt").unlink()
    assert worker_main([str(run.dir), "--mode", "resume"]) == 1
    status = read_json(run.dir / "status.json")
    assert status["state"] == "failed" and "last.pt is missing" in status["message"]
    assert digest(run.dir / "checkpoints" / "best.pt") == kept


@pytest.mark.slow
def test_a_stopped_reevaluation_leaves_the_run_finished_with_its_results(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, count=600, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    metrics = digest(run.dir / "results" / "metrics.json")
    again = reevaluate(registry, run.id, tta=True)
    wait_for(lambda: run_info(run.dir).state in ("preparing", "evaluating"), timeout=60, poll=0.02)
    stop_run(registry, run.id)
    ended = wait_final(again)
    assert ended.state == "finished", ended.message
    assert "earlier results" in ended.message
    assert digest(run.dir / "results" / "metrics.json") == metrics


# ------------------------------------------------------------------ a full disk


class _Usage:
    def __init__(self, free: int):
        self.free = free


def test_a_launch_whose_image_cache_will_not_fit_is_refused_and_leaves_no_run(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a disk with 1 MB free (shutil.disk_usage): the cache of the labelled galaxies at 32 px needs more."""
    import galaxy_tui.data.cache as cache
    registry = tiny_workspace(tmp_path)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda _path: _Usage(1_000_000))
    with pytest.raises(GalaxyError, match=r"cache needs [\d.]+ MB in .*cache.*only 1\.0 MB is free"):
        launch(registry, "tiny")
    assert not (tmp_path / "runs").exists() or not any((d / "status.json").exists()
                                                        for d in (tmp_path / "runs").iterdir())


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A real 1 MB file system (tmpfs): needs root and mount, as in CI; skipped elsewhere."""
    import os
    import subprocess
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and a mount-capable sandbox")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_before_the_build_is_said_plainly_not_a_sigbus(small_disk: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A real 1 MB disk, and a free-space check that says 1 GB (simulates another process filling the disk
    between the check and the build): the build reserves its blocks first, so it fails with the disk's name
    instead of dying of SIGBUS mid-write, and leaves no half-built folder."""
    import galaxy_tui.data.cache as cache
    from galaxy_tui.data.sources import load_dataset
    registry = tiny_workspace(small_disk.parent / "ws")
    dataset = load_dataset(registry.dataset("tiny"), registry.cache_dir)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda _path: _Usage(10**9))
    with pytest.raises(GalaxyError, match="no space left in .*small"):
        cache.prepare_images(dataset, list(dataset.frame["ref"]), 32, small_disk)
    assert list(small_disk.iterdir()) == [] or all(p.suffix == ".lock" for p in small_disk.iterdir())


def test_a_worker_killed_by_sigbus_is_reported_as_the_disk() -> None:
    import signal

    from galaxy_tui.supervisor import final_state_for
    state, message = final_state_for(-signal.SIGBUS, Path("/nonexistent"), {"mode": "train"})
    assert state == "failed" and "full disk" in message and "resume" not in message


# ------------------------------------------------------------------ a run folder that turns read-only


@pytest.mark.slow
def test_a_run_folder_made_read_only_mid_training_ends_failed_saying_so(tmp_path: Path) -> None:
    """A real read-only file system under the run (a read-only bind mount; needs root and mount, as in CI)."""
    import os
    import subprocess

    from galaxy_tui.events import read_events
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    registry = tiny_workspace(tmp_path, epochs=30, extra={"checkpoint_minutes": 0.0001})
    run = launch(registry, "tiny")
    wait_for(lambda: any(e["type"] == "checkpoint" for e in read_events(run.dir / "events.jsonl")))
    bound = subprocess.run(["mount", "--bind", str(run.dir), str(run.dir)], capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"this sandbox cannot bind-mount: {bound.stderr.strip()}")
    try:
        read_only = subprocess.run(["mount", "-o", "remount,ro,bind", str(run.dir)], capture_output=True, text=True)
        if read_only.returncode != 0:
            pytest.skip(f"this sandbox cannot remount read-only: {read_only.stderr.strip()}")
        ended = wait_for(lambda: None if (info := run_info(run.dir)).is_live else info, timeout=60)
        assert ended.state == "failed" and "read-only" in ended.message.lower()
    finally:
        subprocess.run(["umount", "-l", str(run.dir)], check=False)
    ended = run_info(run.dir)  # writable again: the worker's own last word says why
    assert ended.state == "failed" and "Read-only file system" in ended.message
    for log in ("worker.log", "supervisor.log"):
        assert "Traceback" not in (run.dir / log).read_text()
    assert "cannot write" in (run.dir / "worker.log").read_text()


def test_processes_gone_after_a_failed_event_they_could_not_record_read_as_failed(tmp_path: Path) -> None:
    """Simulates the files a worker leaves when status.json could not be rewritten: a live state, dead pids, and
    its `failed` event (appended through the stream it opened before the folder turned read-only)."""
    import json
    import socket

    from galaxy_tui.events import append_event
    from galaxy_tui.procinfo import boot_id
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"state": "training", "attempt": 2, "host": socket.gethostname()}))
    (run_dir / "supervisor.json").write_text(json.dumps({"boot_id": boot_id(), "worker_pid": 999999999,
                                                         "worker_start": 1, "supervisor_pid": 999999998,
                                                         "supervisor_start": 1}))
    append_event(run_dir / "events.jsonl", "failed", message="an earlier attempt's failure")
    append_event(run_dir / "events.jsonl", "started", attempt=2)
    assert run_info(run_dir).state == "lost"  # the failure belongs to attempt 1
    append_event(run_dir / "events.jsonl", "failed", message="cannot write last.pt: Read-only file system")
    info = run_info(run_dir)
    assert info.state == "failed" and info.message == "cannot write last.pt: Read-only file system"


@pytest.mark.slow
def test_a_full_disk_while_evaluating_fails_with_the_disk_not_a_traceback(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates ENOSPC when the evaluation writes metrics.json (its writer raising as a full disk does)."""
    import errno

    import galaxy_tui.analysis.classification_results as results
    from galaxy_tui.events import read_events
    from galaxy_tui.train.worker import main as worker_main
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))

    def full(path: Path, _value: object, **_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(results, "atomic_write_json", full)
    assert worker_main([str(run.dir), "--mode", "evaluate"]) == 1
    status = read_json(run.dir / "status.json")
    assert status["state"] == "failed" and status["message"].startswith("no space left to write")
    failed = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "failed"][-1]
    assert failed["traceback"] is None and "metrics.json" in failed["message"]
