"""What every worker of a job folder (a predict job, a fetch) shares: its status.json rewritten as it goes, SIGTERM
(the launcher's stop) turned into a flag its job checks, and how the job ended written as its last word."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError


class Stopped(Exception):
    """Raised by a job at its next check after the stop: its message is how far it got."""


def write_status(folder: Path, state: str, **fields: object) -> None:
    atomic_write_json(folder / "status.json", {**(read_json(folder / "status.json") or {}), "state": state,
                                               "updated": time.time(), **fields})


def run_worker(job: Callable[[Path, list[bool]], None]) -> int:
    """`job(folder, stop)` for the folder named on the command line; `stop` turns truthy on SIGTERM. Ends the job
    `stopped` (exit 0) on Stopped, `failed` with the reason (exit 1, the traceback in worker.log) on an error."""
    folder = Path(sys.argv[1]).resolve()
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        job(folder, stop)
    except Stopped as exc:
        write_status(folder, "stopped", message=str(exc))
        return 0
    except Exception as exc:  # the job's last word goes to its status; the details to worker.log
        traceback.print_exc()
        write_status(folder, "failed", message=str(exc) if isinstance(exc, GalaxyError)
                     else f"{type(exc).__name__}: {exc}")
        return 1
    return 0
