"""The exit window: a run's final state is written before its worker and supervisor have exited. A launch in that
window must wait for them (never two workers in one run folder, never an old supervisor writing over the new
attempt), and `train`/`stop` return only once the processes are gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.events import read_events
from galaxy_tui.executors import local
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import launch, run_info
from galaxy_tui.supervisor import supervise
from workspace_fixture import tiny_workspace, wait_final, wait_for


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "200"})


def attempts_in_order(run_dir: Path) -> None:
    """Each attempt's worker started only after the previous attempt's supervisor recorded its exit."""
    events = read_events(run_dir / "events.jsonl")
    ended: set[int] = set()
    for event in events:
        if event["type"] == "exited":
            ended.add(int(event["attempt"]))
        if event["type"] == "started" and event["attempt"] > 1:
            assert event["attempt"] - 1 in ended, f"attempt {event['attempt']} started while the previous ran"


def test_a_supervisor_never_ends_a_later_attempt(tmp_path: Path) -> None:
    """Simulates the old race: the worker of attempt 1 exits 0 without a final state while the launcher has
    already written attempt 2 as queued. The supervisor of attempt 1 must leave attempt 2's state alone."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    newer = {"state": "queued", "attempt": 2, "mode": "resume"}
    status = str(run_dir / "status.json")
    fake_worker = f"import pathlib; pathlib.Path({status!r}).write_text({json.dumps(newer)!r})"
    atomic_write_json(run_dir / "launch.json", {"argv": [sys.executable, "-c", fake_worker], "attempt": 1})
    atomic_write_json(run_dir / "status.json", {"state": "training", "attempt": 1})
    supervise(run_dir)
    assert read_json(run_dir / "status.json") == newer
    assert [e["type"] for e in read_events(run_dir / "events.jsonl")] == ["exited"]


def test_a_launch_waits_for_the_previous_attempts_processes(tmp_path: Path) -> None:
    """Simulates a worker that wrote `finished` and takes 2 s more to exit (closing files, tearing down torch):
    a process holding the attempt lock as that worker would, which records the supervisor's `exited` just
    before it lets go. The resume must start its worker after that, not beside it."""
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    first = wait_final(launch(registry, "tiny"))
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        from galaxy_tui.events import append_event
        fd = os.open({str(first.dir / local.ATTEMPT_LOCK)!r}, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(2)
        append_event({str(first.dir / "events.jsonl")!r}, "exited", code=0, signal=None, attempt=1)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert local.attempt_running(first.dir)
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=2))
    resumed = wait_final(launch(load_registry(registry.path), "tiny", "resume"))
    holder.wait()
    assert resumed.state == "finished" and resumed.attempt == 2
    attempts_in_order(first.dir)


def test_a_launch_refuses_while_the_previous_attempt_will_not_exit(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    first = wait_final(launch(registry, "tiny"))
    before = read_json(first.dir / "status.json")
    fd = local.take_attempt_lock(first.dir)  # as a worker stuck after writing its final state
    try:
        monkeypatch.setattr(local, "EXIT_WINDOW_S", 0.3)
        with pytest.raises(Exception, match="previous attempt are still exiting"):
            launch(registry, "tiny", "skip")
    finally:
        os.close(fd)
    assert read_json(first.dir / "status.json") == before  # nothing of a new attempt was written


@pytest.mark.slow
def test_relaunching_the_instant_each_command_returns(tmp_path: Path) -> None:
    """The drill as a script runs it: train -> resume, stop -> resume -> resume, --skip -> evaluate, each
    command the moment the previous one returned. Every attempt ends as itself, never two workers at once."""
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 3})
    assert cli(tmp_path, "train", "tiny").returncode == 0
    (run_dir,) = [d for d in (tmp_path / "runs").iterdir() if (d / "status.json").exists()]
    assert not local.attempt_running(run_dir)  # train returned once the processes were gone
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=2))
    resumed = cli(tmp_path, "train", "tiny", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert run_info(run_dir).state == "finished" and run_info(run_dir).attempt == 2

    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=60))
    assert cli(tmp_path, "train", "tiny", "--resume", "--detach").returncode == 0
    wait_for(lambda: any(e["type"] == "step" and e["epoch"] == 3 for e in read_events(run_dir / "events.jsonl")))
    stopped = cli(tmp_path, "stop", run_dir.name)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout and not local.attempt_running(run_dir)
    assert cli(tmp_path, "train", "tiny", "--resume", "--detach").returncode == 0
    again = cli(tmp_path, "train", "tiny", "--resume", "--detach")
    assert again.returncode == 2 and "stop it first" in again.stderr  # a live run is not launched twice
    assert cli(tmp_path, "stop", run_dir.name).returncode == 0

    assert cli(tmp_path, "train", "tiny", "--skip").returncode == 0
    evaluated = cli(tmp_path, "evaluate", run_dir.name)
    assert evaluated.returncode == 0, evaluated.stderr
    final = run_info(run_dir)
    assert final.state == "finished" and final.attempt == 6
    attempts_in_order(run_dir)
    events = read_events(run_dir / "events.jsonl")
    assert sum(e["type"] == "exited" for e in events) == 6
