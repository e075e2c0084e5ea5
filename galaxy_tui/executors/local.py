"""The local executor: one attempt of a run as a supervisor and its worker in this machine's process tree.

An attempt holds the run folder's attempt lock (an flock on RUN_DIR/attempt.lock) from the moment the launcher
starts it until the last of its processes has exited: the launcher takes it, and hands the open file to the
supervisor, which hands it to the worker. The kernel releases it when every holder is gone, whatever ended them
(an exit, SIGKILL, the OOM killer). A new attempt starts only once the lock is free, so a run folder never has two
workers, and an exiting supervisor never writes its report over the next attempt.

Stdlib only: the UI starts, follows and stops runs without importing torch.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES, LIVE_STATES, append_event
from galaxy_tui.procinfo import boot_id, is_alive

ATTEMPT_LOCK = "attempt.lock"
# How long a launch waits for the previous attempt's processes to exit after its final state was written
# (closing the event stream and the heartbeat, tearing down torch, the supervisor's `exited` event).
EXIT_WINDOW_S = 30.0
_QUEUED_GRACE_S = 30.0
_STALE_HEARTBEAT_S = 120.0
# Seconds torchrun waits after forwarding SIGTERM before it SIGKILLs the ranks (its default is 30 s,
# too short to finish a step and write a large checkpoint). Read by torch 2.11+; older torchrun ignores it.
TORCHRUN_SHUTDOWN_TIMEOUT_S = 600


def worker_argv(run_dir: Path, mode: str, devices: int) -> list[str]:
    worker = ["-m", "galaxy_tui.train.worker", str(run_dir), "--mode", mode]
    if devices > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={devices}", "--log-dir", str(run_dir / "ranks"), "--redirects", "3",
                "--tee", "3", *worker]
    return [sys.executable, *worker]


def worker_environment(devices: int, inherited: dict[str, str]) -> dict[str, str]:
    """Variables the worker needs that the user has not set: expandable segments, because fragmentation
    is the usual cause of "fitted in the probe, out of memory later"; a grace period under torchrun; and
    OpenMP threads that wait briefly instead of spinning, because a spinning thread on a machine whose cores
    are busy elsewhere waits for a core it holds (bench/bench_loop.py --sizes: tiny-cnn at 64 px beside two
    busy processes, 79-192 samples/s spinning, 308-323 waiting briefly; about 12% less when the machine is idle)."""
    env = {}
    if "GOMP_SPINCOUNT" not in inherited and "OMP_WAIT_POLICY" not in inherited:
        env["GOMP_SPINCOUNT"] = "1000"  # GNU OpenMP (PyTorch's Linux wheels): spin 1000 rounds, then sleep
    if "KMP_BLOCKTIME" not in inherited and "OMP_WAIT_POLICY" not in inherited:
        env["KMP_BLOCKTIME"] = "1"  # Intel OpenMP (conda builds): 1 ms
    if "PYTORCH_CUDA_ALLOC_CONF" not in inherited and "PYTORCH_ALLOC_CONF" not in inherited:
        env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    if devices > 1 and "TORCH_ELASTIC_SHUTDOWN_TIMEOUT" not in inherited:
        env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] = str(TORCHRUN_SHUTDOWN_TIMEOUT_S)
    return env


# ---------------------------------------------------------------- the attempt lock

def attempt_running(run_dir: Path) -> bool:
    """Whether a process of an attempt (supervisor, worker) is still alive on this machine."""
    try:
        fd = os.open(run_dir / ATTEMPT_LOCK, os.O_RDONLY)
    except OSError:
        return False  # never launched with a lock (or an older version's run)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock this probe took
    return False


def wait_for_exit(run_dir: Path, timeout_s: float) -> bool:
    """Wait until the attempt's processes are gone; False if they still run after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while attempt_running(run_dir):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def take_attempt_lock(run_dir: Path) -> int:
    """The attempt lock, held by the returned file descriptor; waits up to EXIT_WINDOW_S for a previous attempt
    that is still exiting, then refuses."""
    wait_s = EXIT_WINDOW_S
    fd = os.open(run_dir / ATTEMPT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise GalaxyError(f"run {run_dir.name}: the processes of its previous attempt are still exiting "
                                  f"after {wait_s:.0f} s (it may be writing a large checkpoint); launch it again "
                                  f"when `galaxy-tui runs` no longer shows it as running.") from None
            time.sleep(0.05)


# ---------------------------------------------------------------- start, state, stop

def start(run_dir: Path, argv: list[str], attempt: int, workspace: Path, env: dict[str, str], lock_fd: int) -> None:
    """Start the attempt's supervisor, which starts `argv` (the job's worker) and hands it the attempt lock;
    returns once the worker's pid is on record. The caller keeps its own copy of `lock_fd` and closes it."""
    atomic_write_json(run_dir / "launch.json", {"argv": argv, "attempt": attempt, "cwd": str(workspace), "env": env})
    with open(run_dir / "supervisor.log", "ab") as log:  # what the supervisor says before the worker's log
        launcher = subprocess.Popen([sys.executable, "-m", "galaxy_tui.supervisor", str(run_dir),
                                     "--lock-fd", str(lock_fd)], pass_fds=(lock_fd,),
                                    start_new_session=True, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=workspace)
    launcher.wait(timeout=60)
    if launcher.returncode != 0:
        said = (run_dir / "supervisor.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise GalaxyError(f"the supervisor did not start ({sys.executable} -m galaxy_tui.supervisor): "
                          + (" / ".join(said) or f"exit status {launcher.returncode}"))


def state(run_dir: Path, status: dict[str, Any]) -> tuple[str, str]:
    """A live state from status.json checked against the processes, and what to say of it: `lost` where nothing
    vouches for it, `failed` where the processes are gone because the run folder cannot be written."""
    written = str(status.get("state", "lost"))
    said = str(status.get("message") or "")
    if written not in LIVE_STATES:
        return "lost", said  # a state this program never writes: nothing vouches for a live run
    supervisor = read_json(run_dir / "supervisor.json")
    now = time.time()
    if supervisor is None:
        return (written, said) if now - number(status, "updated") < _QUEUED_GRACE_S else _gone(run_dir, said)
    if status.get("host") not in (None, socket.gethostname()):  # another machine: only the heartbeat tells
        return (written, said) if now - number(status, "heartbeat") < _STALE_HEARTBEAT_S else ("lost", said)
    if supervisor.get("boot_id") != boot_id():
        return "lost", said
    if is_alive(supervisor.get("worker_pid"), supervisor.get("worker_start")) or \
            is_alive(supervisor.get("supervisor_pid"), supervisor.get("supervisor_start")):
        return written, said
    return _gone(run_dir, said)


def _gone(run_dir: Path, said: str) -> tuple[str, str]:
    """The processes are gone without a final state: a folder they could not write explains it (nothing could
    record it there), anything else is `lost`."""
    try:
        read_only = bool(os.statvfs(run_dir).f_flag & os.ST_RDONLY) or not os.access(run_dir, os.W_OK)
    except OSError:
        read_only = False
    if read_only:
        return "failed", (f"cannot write {run_dir}: read-only, so the worker stopped; make the folder writable, "
                          f"then resume it")
    return _last_word(run_dir) or ("lost", said)


def _last_word(run_dir: Path) -> tuple[str, str] | None:
    """The final event the attempt's worker appended when status.json could not be written (its stream was
    open before the folder became read-only), if it did."""
    try:
        with open(run_dir / "events.jsonl", "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 16384))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "started":
            return None
        if kind in FINAL_STATES:
            return str(kind), str(event.get("message") or "")
    return None


def number(status: dict[str, Any], key: str, default: float = 0.0) -> float:
    """A figure from status.json, or the default when it is missing or not a number (a damaged or
    hand-edited file must not break the listing of every run)."""
    value = status.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return value


def stop(run_dir: Path) -> int:
    """SIGTERM to the attempt's worker (it finishes its step, checkpoints and exits); returns its pid."""
    supervisor = read_json(run_dir / "supervisor.json") or {}
    pid, ticks = supervisor.get("worker_pid"), supervisor.get("worker_start")
    if not is_alive(pid, ticks):
        raise GalaxyError(f"run {run_dir.name}: its worker process is not running here; nothing to stop.")
    try:
        os.kill(int(pid), signal.SIGTERM)
    except OSError as exc:
        if exc.errno == errno.ESRCH:  # it ended between the check and the signal
            raise GalaxyError(f"run {run_dir.name}: its worker has just exited; nothing to stop.") from None
        raise GalaxyError(f"run {run_dir.name}: cannot signal its worker (pid {pid}): {exc.strerror}.") from None
    append_event(run_dir / "events.jsonl", "stop_requested", pid=pid)
    return int(pid)
