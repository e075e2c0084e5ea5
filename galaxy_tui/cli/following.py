"""Following a run from the command line to its end, and what a signal to the command means for the run.
Detached from the start, a run outlives the command (SSH drops, `timeout` fires): by default a signal ends only
the following, and says how to stop the run; with `--attached` the run is tied to the command, and a signal
stops it cleanly (it finishes the step, checkpoints and becomes `stopped`)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.console import Console

# The exit status of train, evaluate and boost (README, "Scripts").
FINISHED, FAILED, STOPPED = 0, 1, 3  # 2: a user error, said before anything starts (cli.main)
SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Signalled(Exception):
    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.number = number


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Signalled here (Python's defaults would end the process silently)."""
    def handler(number: int, _frame: FrameType | None) -> None:
        raise Signalled(number)
    before = {number: signal.signal(number, handler) for number in SIGNALS}
    try:
        yield
    finally:
        for number, previous in before.items():
            signal.signal(number, previous)


def exit_status(state: str) -> int:
    return FINISHED if state == "finished" else STOPPED if state == "stopped" else FAILED


def follow_to_the_end(run_dir: Path, run_id: str, attempt: int, console: Console,
                      stop: Callable[[], object] | None = None) -> int:
    """The run's exit status once it ends. `stop`: the run is attached, and a signal stops it with this."""
    from galaxy_tui.errors import GalaxyError
    from galaxy_tui.executors import jobs
    from galaxy_tui.runs import run_info
    from galaxy_tui.watch import follow_run
    err = Console(stderr=True)
    try:
        with signals_raise():
            return exit_status(follow_run(run_dir, console, attempt=attempt))
    except Signalled as signalled:
        name = signal.Signals(signalled.number).name
        if stop is None:
            err.print(f"galaxy-tui: {name}: stopped following; run {run_id} goes on in the background. "
                      f"`galaxy-tui stop {run_id}` stops it (it checkpoints); `galaxy-tui show {run_id}` shows it")
            return SIGNALS[signalled.number]
    err.print(f"galaxy-tui: {name}: stopping run {run_id} (--attached): it finishes the step and checkpoints")
    try:
        stop()
    except GalaxyError:  # it ended meanwhile
        pass
    with signals_raise():  # a second signal while it stops: stop waiting, the stop goes on
        try:
            jobs.wait_for_end(run_dir, 300)
        except Signalled:
            pass
    final = run_info(run_dir)
    err.print(f"galaxy-tui: run {run_id}: {final.state}" + (f" ({final.message})" if final.message else ""))
    return exit_status(final.state)
