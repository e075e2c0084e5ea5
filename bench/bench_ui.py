"""The app's event pipeline and its idle cost, measured on the real app (headless, Textual's run_test).

1. Catch-up: 50,000 events are written at full speed into a live run's events.jsonl; we time how long
   the app's model takes to hold all of them, against a plain single-threaded json.loads of the file.
2. Idle: the app watching one live run that writes nothing; its process CPU time over 10 s of wall time.
3. First paint: `galaxy-tui` started in a real pseudo-terminal (100x30) until its tabs are on screen,
   against a minimal Textual app (one Static) started the same way. This pseudo-terminal answers no
   queries, so textual-image's two graphics-protocol probes wait out their 0.1 s time-outs here.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixture_runs import FrozenTelemetry  # noqa: E402
from galaxy_tui.app.main import GalaxyApp  # noqa: E402
from galaxy_tui.events import EventWriter  # noqa: E402
from galaxy_tui.procinfo import boot_id, start_ticks  # noqa: E402
from galaxy_tui.registry import ensure_registry  # noqa: E402

EVENTS = 50_000


def live_run(workspace: Path) -> tuple[Path, subprocess.Popen]:
    """A run folder whose 'worker' is a real sleeping process, so the app treats the run as live."""
    registry = ensure_registry(workspace)
    run = registry.runs_dir / "bench-run"
    run.mkdir(parents=True)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(0.2)
    (run / "status.json").write_text(json.dumps({"experiment": "demo-tiny", "state": "training", "epochs": 100,
                                                 "started": time.time(), "updated": time.time()}))
    (run / "supervisor.json").write_text(json.dumps({
        "boot_id": boot_id(), "worker_pid": worker.pid, "worker_start": start_ticks(worker.pid),
        "supervisor_pid": worker.pid, "supervisor_start": start_ticks(worker.pid)}))
    return run, worker


def write_events(path: Path, count: int) -> None:
    writer = EventWriter(path)
    for i in range(count):
        writer.emit("step", epoch=1 + i // 1000, step=i + 1, loss=1.0 / (1 + i), lr=3e-4, samples_per_s=5000.0,
                    step_in_epoch=i % 1000 + 1, steps_per_epoch=1000)
    writer.close()


async def measure(workspace: Path, run: Path) -> tuple[float, float, float]:
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        while app.store.current is None:
            await pilot.pause(0.05)
        write_start = time.perf_counter()
        write_events(run / "events.jsonl", EVENTS)
        while app.store.current.model.events_seen < EVENTS:
            await pilot.pause(0.01)
        catch_up = time.perf_counter() - write_start
        await pilot.pause(2.0)  # let the repaint settle before measuring idle
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await asyncio.sleep(10.0)
        idle = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    start = time.perf_counter()
    with open(run / "events.jsonl", "rb") as handle:
        parsed = [json.loads(line) for line in handle]
    plain = time.perf_counter() - start
    assert len(parsed) == EVENTS
    return catch_up, plain, idle


MINIMAL_APP = ("from textual.app import App\nfrom textual.widgets import Static\n"
               "class Hello(App):\n    def compose(self):\n        yield Static('Datasets')\nHello().run()\n")


def first_paint(argv: list[str], cwd: Path, marker: bytes = b"Datasets") -> float:
    """Seconds from spawning `argv` in a 100x30 pseudo-terminal until `marker` is drawn."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the program, in the terminal
        os.chdir(cwd)
        os.environ["TERM"] = "xterm-256color"
        os.execv(argv[0], argv)
    # rows, columns and the pixel size, which terminal emulators report (textual-image reads it)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 1000, 600))
    seen = b""
    try:
        while marker not in seen:
            ready, _, _ = select.select([fd], [], [], 20)
            if not ready:
                raise RuntimeError(f"{argv} drew nothing in 20 s")
            seen += os.read(fd, 1 << 16)
        return time.perf_counter() - start
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        run, worker = live_run(workspace)
        try:
            catch_up, plain, idle = asyncio.run(measure(workspace, run))
        finally:
            worker.kill()
    print(f"catch-up of {EVENTS:,} events written at full speed: {catch_up:.2f} s = {EVENTS / catch_up:,.0f} events/s "
          f"(the writer's time included); plain json.loads of the file {EVENTS / plain:,.0f} events/s, "
          f"ratio {plain / catch_up:.2f}")
    print(f"app CPU while one run is live and idle: {100 * idle:.1f}% of one core (over 10 s, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        ensure_registry(Path(tmp))
        command = shutil.which("galaxy-tui") or sys.executable
        argv = [command] if command != sys.executable else [sys.executable, "-m", "galaxy_tui.cli"]
        ours = min(first_paint(argv, Path(tmp)) for _ in range(3))
        minimal = min(first_paint([sys.executable, "-c", MINIMAL_APP], Path(tmp)) for _ in range(3))
    print(f"first paint in a 100x30 pseudo-terminal: galaxy-tui {ours:.2f} s, minimal Textual app {minimal:.2f} s, "
          f"ratio {ours / minimal:.2f} (best of 3)")


if __name__ == "__main__":
    main()
