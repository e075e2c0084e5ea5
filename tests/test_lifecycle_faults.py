"""Faults found by breaking the run lifecycle on purpose: concurrent launches, run ids that are paths,
stops in every phase, bad input caught before a run folder exists, interrupted cache builds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.data.splits import split_problem, stratified_split
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.registry import update_registry
from galaxy_tui.runs import find_runs, get_run, launch, run_info, stop_run
from workspace_fixture import tiny_workspace, wait_final, wait_for


def cli(workspace: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})})


# ------------------------------------------------------------------ run ids are names, not paths

@pytest.mark.parametrize("run_id", ["../../somewhere", "/etc", "a/b", "..", "*"])
def test_a_run_id_names_a_folder_inside_runs_dir_never_a_path(tmp_path: Path, run_id: str) -> None:
    registry = tiny_workspace(tmp_path / "ws")
    planted = tmp_path / "somewhere"
    planted.mkdir()
    atomic_write_json(planted / "status.json", {"state": "training", "pid": os.getpid()})
    with pytest.raises(GalaxyError, match="is not a run id|no run"):
        get_run(registry, run_id)
    with pytest.raises(GalaxyError, match="is not a run id|no run"):
        stop_run(registry, run_id)
    assert not (planted / "events.jsonl").exists()  # nothing was appended to the planted folder


def test_stop_and_show_of_a_path_exit_2_with_a_message(tmp_path: Path) -> None:
    tiny_workspace(tmp_path / "ws")
    for command, run_id in (("stop", "/etc"), ("show", "../../somewhere")):
        result = cli(tmp_path / "ws", command, run_id)
        assert result.returncode == 2 and "is not a run id" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ two launches at the same instant

def _launch_at(go: Path, workspace: Path, choice: str, out: Path) -> subprocess.Popen:
    code = ("import sys, time, pathlib\n"
            f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.001)\n"
            "from galaxy_tui.cli import main\n"
            f"sys.exit(main(['--workspace', {str(workspace)!r}, 'train', 'tiny', '--{choice}', '--detach']))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=open(out, "w"), text=True)


@pytest.mark.slow
def test_two_resumes_released_at_the_same_instant_start_one_worker(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    first = wait_final(launch(registry, "tiny"))
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=2))
    go = tmp_path / "go"
    launchers = [_launch_at(go, tmp_path, "resume", tmp_path / f"err{i}") for i in range(2)]
    time.sleep(1.5)  # both are waiting for the same instant
    seen: set[str] = set()
    watching = True

    def watch() -> None:  # a reader during the launches must never see `lost`
        while watching:
            seen.add(run_info(first.dir).state)
            time.sleep(0.0005)

    reader = threading.Thread(target=watch)
    reader.start()
    go.touch()
    codes = [p.wait(60) for p in launchers]
    errors = [(tmp_path / f"err{i}").read_text() for i in range(2)]
    final = wait_final(run_info(first.dir), timeout=120)
    watching = False
    reader.join()
    assert sorted(codes) == [0, 2], errors
    assert "stop it first" in errors[codes.index(2)]
    assert final.state == "finished" and final.attempt == 2  # one new attempt, not two
    assert [e["type"] for e in read_events(first.dir / "events.jsonl")].count("exited") == 2
    assert "lost" not in seen, seen


@pytest.mark.slow
def test_two_restarts_in_the_same_second_get_two_run_folders(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    go = tmp_path / "go"
    launchers = [_launch_at(go, tmp_path, "restart", tmp_path / f"err{i}") for i in range(2)]
    time.sleep(1.5)
    go.touch()
    assert [p.wait(60) for p in launchers] == [0, 0], [(tmp_path / f"err{i}").read_text() for i in range(2)]
    runs = find_runs(registry)
    assert len(runs) == 2 and len({r.id for r in runs}) == 2
    for run in runs:
        wait_final(run)


# ------------------------------------------------------------------ stops in every phase

@pytest.mark.slow
def test_a_stop_while_preparing_images_ends_stopped_within_seconds(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, count=20_000, extra={"image_size": 64})
    update_registry(registry.path, lambda raw: raw["datasets"]["tiny"].update(size=64))
    run = launch(registry, "tiny")
    wait_for(lambda: "prepare" in [e["type"] for e in read_events(run.dir / "events.jsonl")], timeout=120)
    stop_run(registry, run.id)
    asked = time.monotonic()
    final = wait_final(run, timeout=60)
    assert time.monotonic() - asked < 10
    assert final.state == "stopped" and "stopped while preparing" in final.message, final.message
    assert not list((tmp_path / "cache").glob("*.building-*"))  # the half-built cache is gone


def test_a_sigterm_before_the_worker_handles_it_is_a_stop_not_a_kill(tmp_path: Path) -> None:
    """Simulates the worker's first moments (importing torch, no handler yet) with a process that has no
    SIGTERM handler; the supervisor owns it as it owns the real worker."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    atomic_write_json(run_dir / "status.json", {"state": "queued", "attempt": 1})
    atomic_write_json(run_dir / "launch.json", {"argv": [sys.executable, "-c", "import time; time.sleep(60)"],
                                                "attempt": 1})
    subprocess.run([sys.executable, "-m", "galaxy_tui.supervisor", str(run_dir)], check=True, timeout=60)
    worker = read_json(run_dir / "supervisor.json")["worker_pid"]
    os.kill(worker, signal.SIGTERM)
    wait_for(lambda: (read_json(run_dir / "status.json") or {}).get("state") == "stopped", timeout=20)
    assert "before any step" in read_json(run_dir / "status.json")["message"]


# ------------------------------------------------------------------ bad input before a run folder exists

def test_a_missing_dataset_folder_exits_2_and_creates_no_run(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    update_registry(registry.path, lambda raw: (
        raw["datasets"].__setitem__("gone", {"kind": "image-folder", "path": "nowhere"}),
        raw["experiments"]["tiny"].__setitem__("dataset", "gone")))
    result = cli(tmp_path, "train", "tiny")
    assert result.returncode == 2 and "nowhere" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in (tmp_path / "runs").glob("*") if p.is_dir()]  # no run folder (a lock file at most)


def test_a_class_with_no_galaxies_is_refused_at_launch(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, extra={"labels": {"threshold": 1.0}})
    with pytest.raises(GalaxyError, match="has no galaxies at this labelling"):
        launch(registry, "tiny")
    assert not find_runs(registry)


# ------------------------------------------------------------------ splits

def test_every_part_gets_a_galaxy_of_every_class_that_has_three() -> None:
    labels = np.array([0] * 100 + [1] * 3 + [2] * 6)
    assignment = stratified_split(labels, (0.8, 0.1, 0.1), seed=0)
    for part in ("train", "val", "test"):
        assert set(labels[assignment == part]) == {0, 1, 2}, part
    assert split_problem(labels, assignment, ("a", "b", "c"), (0.8, 0.1, 0.1), "d") is None


def test_a_split_with_an_empty_part_is_refused_with_the_counts() -> None:
    labels = np.array([0] * 50 + [1] * 2)
    assignment = stratified_split(labels, (0.8, 0.1, 0.1), seed=0)
    problem = split_problem(labels, assignment, ("elliptical", "spiral"), (0.8, 0.1, 0.1), "demo")
    assert problem and "no galaxies for spiral in" in problem and "spiral=" in problem
    assert "lower the threshold" in problem


# ------------------------------------------------------------------ interrupted cache builds

def test_interrupted_cache_builds_of_dead_processes_are_swept(tmp_path: Path) -> None:
    from galaxy_tui.data.cache import sweep_interrupted_builds
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f"abc.building-{dead.pid}"
    mine = tmp_path / f"def.building-{os.getpid()}"
    for folder in (leftover, mine):
        folder.mkdir()
        (folder / "images.u8").write_bytes(b"\0" * 1024)
    assert sweep_interrupted_builds(tmp_path) == [leftover]
    assert not leftover.exists() and mine.exists()


@pytest.mark.slow
def test_without_a_test_part_the_results_say_validation_everywhere(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"split": [0.85, 0.15, 0.0], "max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    metrics = json.loads((run.dir / "results" / "metrics.json").read_text())
    assert metrics["split"] == "validation"
    assert next(e for e in read_events(run.dir / "events.jsonl") if e["type"] == "eval")["split"] == "validation"
    shown = cli(tmp_path, "show", run.id).stdout
    assert "validation accuracy" in shown and "test accuracy" not in shown
