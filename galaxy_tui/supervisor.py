"""The supervisor: a tiny stdlib-only process that owns one worker attempt.

`python -m galaxy_tui.supervisor RUN_DIR` is started in a new session by the launcher. It forks
once (so the launcher can reap it at once and the run belongs to no terminal), starts the worker
command from RUN_DIR/launch.json with output to worker.log, records pids, start times and the boot
id in supervisor.json, waits, and then appends an `exited` event. If the worker left no final state
(SIGKILL, the OOM killer, a crash before it could write one), the supervisor writes it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.events import AGAIN_MODES, FINAL_STATES, append_event
from galaxy_tui.procinfo import boot_id, start_ticks

_READY_TIMEOUT_S = 30.0


def rank_failure_path(run_dir: Path, rank: int) -> Path:
    """Where a rank of a several-process run says why it failed (only rank 0 writes status and events)."""
    return run_dir / "ranks" / f"failure-rank{rank}.json"


def images_ready_path(run_dir: Path) -> Path:
    """Rank 0's word to the other ranks that the image cache is built (this attempt)."""
    return run_dir / "ranks" / "images-ready.json"


def read_rank_failures(run_dir: Path) -> list[dict]:
    """The failures ranks reported in this attempt, earliest first."""
    records = []
    for path in (run_dir / "ranks").glob("failure-rank*.json"):
        record = read_json(path)
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            records.append({"rank": int(record.get("rank", -1)), "message": record["message"],
                            "t": float(record.get("t", 0))})
    return sorted(records, key=lambda r: (r["t"], r["rank"]))


def final_state_for(code: int, run_dir: Path, status: dict) -> tuple[str, str]:
    failures = read_rank_failures(run_dir)
    if failures:
        first = failures[0]
        return "failed", f"rank {first['rank']}: {first['message']}"
    if code == -signal.SIGTERM and status.get("before") == "finished" and status.get("mode") in AGAIN_MODES:
        return "finished", f"the {status['mode']} was stopped before it began; the earlier results stand"
    if code == -signal.SIGBUS:
        return "failed", ("the worker was killed by SIGBUS: a memory-mapped file (the prepared-image cache) could "
                          "not be read or written, which is what a full disk does; free space where the cache is "
                          "(workspace cache_dir) and launch it again")
    if code == -signal.SIGTERM and status.get("mode") == "predict":
        return "stopped", "stopped while the worker was starting, before it classified any image"
    if code == -signal.SIGTERM:
        # Only a stop sends SIGTERM; it arrived before the worker could handle it (it was starting up).
        return "stopped", ("stopped while the worker was starting, before any step; resume continues from the "
                           "last checkpoint if there is one, otherwise launch it again")
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (the out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return "killed", f"the worker was killed by {name}{hint}; resume continues from the last checkpoint"
    return "failed", f"the worker exited with code {code} without a final state; see worker.log"


def supervise(run_dir: Path, lock_fd: int | None = None) -> int:
    launch = read_json(run_dir / "launch.json") or {}
    argv = launch.get("argv")
    if not argv:
        append_event(run_dir / "events.jsonl", "failed", message="launch.json has no worker command")
        return 2
    env = {**os.environ, **launch.get("env", {})}
    for stale in (*(run_dir / "ranks").glob("failure-rank*.json"), images_ready_path(run_dir)):
        stale.unlink(missing_ok=True)  # a new attempt starts with no failures and no images on record
    with open(run_dir / "worker.log", "ab") as log:
        # The worker holds the attempt lock too, so a new attempt waits for it even if this process is killed.
        worker = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=launch.get("cwd") or None, env=env,
                                  pass_fds=() if lock_fd is None else (lock_fd,))
    atomic_write_json(run_dir / "supervisor.json", {
        "attempt": launch.get("attempt", 1),
        "boot_id": boot_id(),
        "supervisor_pid": os.getpid(),
        "supervisor_start": start_ticks(os.getpid()),
        "worker_pid": worker.pid,
        "worker_start": start_ticks(worker.pid),
        "started": time.time(),
    })
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: worker.send_signal(signal.SIGTERM))
    code = worker.wait()
    attempt = launch.get("attempt", 1)
    exited = {"code": code if code >= 0 else None,
              "signal": signal.Signals(-code).name if code < 0 else None, "attempt": attempt}
    try:
        append_event(run_dir / "events.jsonl", "exited", **exited)
        status = read_json(run_dir / "status.json") or {}
        # Only this attempt's state: a later attempt's is not this supervisor's to end.
        if status.get("state") not in FINAL_STATES and status.get("attempt", attempt) == attempt:
            state, message = final_state_for(code, run_dir, status)
            append_event(run_dir / "events.jsonl", state, message=message)
            atomic_write_json(run_dir / "status.json", {**status, "state": state, "message": message,
                                                        "updated": time.time(), "pid": None}, in_place_fallback=True)
    except OSError as exc:  # a read-only or full disk: readers derive the state from the processes being gone
        print(f"galaxy-tui supervisor: the worker exited ({exited}); cannot record it in {run_dir}: "
              f"{exc.strerror or exc}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="galaxy_tui.supervisor")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--lock-fd", type=int, help="the attempt lock, held open for the attempt's lifetime")
    args = parser.parse_args()
    run_dir = args.run_dir.resolve()
    if os.fork() > 0:
        # The launcher waits for this parent: return once the worker is recorded, so no reader
        # ever sees a queued run without a supervisor.json.
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline and not (run_dir / "supervisor.json").exists():
            time.sleep(0.01)
        os._exit(0)
    return supervise(run_dir, args.lock_fd)


if __name__ == "__main__":
    sys.exit(main())
