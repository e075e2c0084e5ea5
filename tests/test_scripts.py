"""`galaxy-tui train` in scripts: its exit status says how the run ended (0 finished, 1 failed, 2 a user error,
3 stopped), a signal to a plain `train` ends only the following and says how to stop the run, and with
`--attached` a signal stops the run cleanly. Real processes, a tiny model on 32 px galaxies."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from galaxy_tui.events import read_events
from galaxy_tui.runs import find_runs, run_info
from workspace_fixture import tiny_workspace, wait_for


def start_train(workspace: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), "train", "tiny",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True)


def training(workspace: Path) -> Path:
    """The run's folder once its worker is past its first optimizer step."""
    def stepped() -> Path | None:
        runs = find_runs(tiny_workspace_registry(workspace))
        if runs and any(e["type"] == "step" for e in read_events(runs[0].dir / "events.jsonl")):
            return runs[0].dir
        return None
    return wait_for(stepped, 120)


def tiny_workspace_registry(workspace: Path):  # noqa: ANN201
    from galaxy_tui.registry import load_registry
    return load_registry(workspace / "experiments.toml")


def test_a_signal_to_a_plain_train_ends_the_following_and_the_run_goes_on(tmp_path: Path) -> None:
    tiny_workspace(tmp_path, epochs=40)
    command = start_train(tmp_path)
    run_dir = training(tmp_path)
    command.send_signal(signal.SIGTERM)
    _out, err = command.communicate(timeout=60)
    assert command.returncode == 143
    assert f"run {run_dir.name} goes on" in err and f"galaxy-tui stop {run_dir.name}" in err
    assert run_info(run_dir).is_live  # untouched
    stop = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "stop",
                           run_dir.name], capture_output=True, text=True, timeout=300)
    assert stop.returncode == 0 and run_info(run_dir).state == "stopped"


def test_an_attached_train_stops_its_run_on_ctrl_c_and_exits_3(tmp_path: Path) -> None:
    tiny_workspace(tmp_path, epochs=40)
    command = start_train(tmp_path, "--attached")
    run_dir = training(tmp_path)
    command.send_signal(signal.SIGINT)
    _out, err = command.communicate(timeout=300)
    assert command.returncode == 3, err
    assert "stopping run" in err and run_info(run_dir).state == "stopped"
    assert (run_dir / "checkpoints" / "last.pt").exists()  # resumable


@pytest.mark.parametrize(("args", "status"), [(("--detach", "--attached"), 2), (("--epochs",), 2)])
def test_a_user_error_is_2(tmp_path: Path, args: tuple[str, ...], status: int) -> None:
    tiny_workspace(tmp_path)
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "train", "tiny",
                           *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == status and "error" in done.stderr


def test_a_missing_experiment_is_a_user_error(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "train", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "nope" in done.stderr and "Traceback" not in done.stderr
