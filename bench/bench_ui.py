"""The app's event pipeline, its idle cost and its first paint, measured on the real app.

1. Catch-up: 50,000 events are written at full speed into a live run's events.jsonl; we time how long
   the app's model takes to hold all of them, against a plain single-threaded json.loads of the file.
2. Idle: the app (headless, Textual's run_test, the real NVML sampler) watching one live run whose
   "worker" is galaxy-tui's own Reporter and HostLogger in another process: status.json rewritten every
   2 s (the heartbeat) and a `host` event every 2 s, as a training worker between steps. The app's
   process CPU time over 60 s of wall time; then the same with no live run.
3. First paint: `galaxy-tui` started in a real 100x30 pseudo-terminal that answers the terminal queries
   a terminal emulator answers (device attributes, cell and window size, synchronized output), until
   the dataset counts are on screen; against a minimal Textual app until its one line is drawn, and the
   same minimal app importing textual-image (the floor for any app that shows images), and a skeleton of
   Textual's widgets our first screen is made of (header, tabs, table, footer) with no logic. Median of 5
   launches each, the first (cold) one included: it has no remembered counts and reads the catalogue.
4. Scale: 1,000 finished runs in runs/: first paint until the counts, a runs list paged through from top
   to bottom (seconds per page), and idle CPU over 20 s.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from galaxy_tui.app.main import GalaxyApp  # noqa: E402
from galaxy_tui.events import EventWriter  # noqa: E402
from galaxy_tui.procinfo import boot_id, start_ticks  # noqa: E402
from galaxy_tui.registry import ensure_registry  # noqa: E402

EVENTS = 50_000
IDLE_S = 60.0
LAUNCHES = 5
SCALE_RUNS = 1000

WORKER = """
import sys, time
from pathlib import Path
from galaxy_tui.train.reporting import HostLogger, Reporter
reporter = Reporter(Path(sys.argv[1]), writes=True)
reporter.update(experiment="demo-tiny", state="training", attempt=1, epoch=3, epochs=100, started=time.time())
HostLogger(reporter).start()
time.sleep(3600)
"""


def live_run(workspace: Path) -> tuple[Path, subprocess.Popen]:
    """A run folder whose 'worker' is galaxy-tui's Reporter (heartbeat) and HostLogger in a real process."""
    registry = ensure_registry(workspace)
    run = registry.runs_dir / "bench-run"
    run.mkdir(parents=True)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(run)])
    while not (run / "status.json").exists():
        time.sleep(0.05)
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


async def idle_share(seconds: float) -> float:
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)


async def measure_live(workspace: Path, run: Path) -> tuple[float, float, float]:
    app = GalaxyApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.store.current is None or app.active_pane != "monitor":
            await pilot.pause(0.05)
        write_start = time.perf_counter()
        write_events(run / "events.jsonl", EVENTS)
        while app.store.current.model.events_seen < EVENTS:
            await pilot.pause(0.01)
        catch_up = time.perf_counter() - write_start
        await pilot.pause(3.0)  # let the repaint settle before measuring idle
        idle = await idle_share(IDLE_S)
    start = time.perf_counter()
    with open(run / "events.jsonl", "rb") as handle:
        parsed = [json.loads(line) for line in handle]
    plain = time.perf_counter() - start
    assert len(parsed) >= EVENTS
    return catch_up, plain, idle


async def measure_quiet(workspace: Path, seconds: float) -> float:
    app = GalaxyApp(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(3.0)
        return await idle_share(seconds)


async def measure_scrolling(workspace: Path) -> tuple[float, int]:
    """Seconds per page of the runs list, paging from the top to the bottom of 1,000 runs."""
    app = GalaxyApp(workspace)
    async with app.run_test(size=(160, 48)) as pilot:
        while len(app.store.records) < SCALE_RUNS:
            await pilot.pause(0.05)
        await pilot.press("r")
        table = app.query_one("#runs-table")
        start, pages = time.perf_counter(), 0
        while table.cursor_row < SCALE_RUNS - 1:
            await pilot.press("pagedown")
            pages += 1
        return (time.perf_counter() - start) / pages, pages


# What a terminal emulator answers; the app (Textual, textual-image) asks some of these at start.
ANSWERS = [(re.compile(rb"\x1b\[0?c"), b"\x1b[?62;4;22c"),          # primary device attributes (+sixel)
           (re.compile(rb"\x1b\[16t"), b"\x1b[6;20;10t"),            # cell size in pixels
           (re.compile(rb"\x1b\[14t"), b"\x1b[4;600;1000t"),         # window size in pixels
           (re.compile(rb"\x1b\[\?(\d+)\$p"), None)]                 # DEC private mode report: "not recognised"


def _answers(output: bytes) -> bytes:
    replies = b""
    for pattern, reply in ANSWERS:
        for match in pattern.finditer(output):
            replies += reply if reply is not None else b"\x1b[?" + match.group(1) + b";0$y"
    return replies


def first_paint(argv: list[str], cwd: Path, marker: bytes, then: Callable[[int], object] | None = None) -> float:
    """Seconds from spawning `argv` in a 100x30 pseudo-terminal until `marker` is drawn; `then(pid)` runs after it,
    while the program still runs (the terminal's output is not read meanwhile: keep it short)."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the program, in the terminal
        os.chdir(cwd)
        os.environ["TERM"] = "xterm-256color"
        # As on a person's machine, the first launch writes the bytecode of modules pip did not compile (an
        # editable install's); a PYTHONDONTWRITEBYTECODE left in this shell would recompile ours at every launch.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.execv(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 1000, 600))
    seen = b""
    try:
        while marker not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            if not ready:
                raise RuntimeError(f"{argv} drew no {marker!r} in 30 s")
            chunk = os.read(fd, 1 << 16)
            seen += chunk
            replies = _answers(chunk)
            if replies:
                os.write(fd, replies)
        painted = time.perf_counter() - start
        if then is not None:
            then(pid)
        return painted
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def app_argv() -> list[str]:
    """The console script installed beside this interpreter, as the minimal apps run on it directly: a shim on
    PATH (pyenv's is a bash script) would add its own start-up to ours."""
    script = Path(sys.executable).with_name("galaxy-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "galaxy_tui.cli"]


MINIMAL_APP = ("from textual.app import App\nfrom textual.widgets import Static\n"
               "class Hello(App):\n    def compose(self):\n        yield Static('hello total')\nHello().run()\n")
# The same app importing textual-image first, as any app showing images must: it probes the terminal's
# graphics protocols at import, before Textual owns the terminal, and brings numpy with it.
MINIMAL_IMAGE_APP = "import textual_image.widget\n" + MINIMAL_APP
# What Textual's own widgets on our first screen cost with no logic of ours: header, four tabs, a table,
# the counts and a footer with keys, the image library imported. The floor for this screen.
SKELETON_APP = """import textual_image.widget
from textual.app import App
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane
class Skeleton(App):
    BINDINGS = [(key, "bell", f"command {key}") for key in "tlmaefv"]
    def compose(self):
        yield Header()
        with TabbedContent():
            with TabPane("1 Datasets"):
                with Horizontal():
                    with Vertical():
                        yield DataTable()
                        yield Static("dataset")
                    with VerticalScroll():
                        yield Static("labelling")
                        yield Static("hello total")
            for name in ("2 Experiments", "3 Monitor", "4 Results"):
                yield TabPane(name)
        yield Footer()
    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("name", "kind", "rows")
        table.add_row("demo", "synthetic", "600")
Skeleton().run()
"""


def finished_runs(workspace: Path, count: int) -> None:
    runs = ensure_registry(workspace).runs_dir
    for i in range(count):
        run = runs / f"demo-tiny-2026{i:06d}"
        (run / "results").mkdir(parents=True)
        (run / "status.json").write_text(json.dumps({
            "experiment": "demo-tiny", "state": "finished", "attempt": 1, "epoch": 8, "epochs": 8,
            "best_metric": 0.9 + i / 1e4, "started": 1.79e9 + i, "updated": 1.79e9 + i + 60}))
        (run / "results" / "metrics.json").write_text(json.dumps({
            "accuracy": 0.95, "loss": 0.2, "macro_f1": 0.95, "model": "tiny-cnn", "threshold": 0.8,
            "classes": ["elliptical", "spiral", "edge_on"], "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            "per_class": {}, "seconds": 60}))


def median_paint(argv: list[str], cwd: Path, marker: bytes) -> float:
    return statistics.median(first_paint(argv, cwd, marker) for _ in range(LAUNCHES))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        run, worker = live_run(workspace)
        try:
            catch_up, plain, idle_live = asyncio.run(measure_live(workspace, run))
        finally:
            worker.kill()
    with tempfile.TemporaryDirectory() as tmp:
        ensure_registry(Path(tmp))
        idle_quiet = asyncio.run(measure_quiet(Path(tmp), IDLE_S / 3))
        ours = median_paint(app_argv(), Path(tmp), b"total")
        minimal = median_paint([sys.executable, "-c", MINIMAL_APP], Path(tmp), b"hello total")
        minimal_images = median_paint([sys.executable, "-c", MINIMAL_IMAGE_APP], Path(tmp), b"hello total")
        skeleton = median_paint([sys.executable, "-c", SKELETON_APP], Path(tmp), b"hello total")
    with tempfile.TemporaryDirectory() as tmp:
        finished_runs(Path(tmp), SCALE_RUNS)
        scale_paint = median_paint(app_argv(), Path(tmp), b"total")
        per_page, pages = asyncio.run(measure_scrolling(Path(tmp)))
        idle_scale = asyncio.run(measure_quiet(Path(tmp), 20.0))
    print(f"catch-up of {EVENTS:,} events written at full speed: {catch_up:.2f} s = {EVENTS / catch_up:,.0f} events/s "
          f"(the writer's time included); plain json.loads of the file {EVENTS / plain:,.0f} events/s, "
          f"ratio {plain / catch_up:.2f}")
    print(f"app CPU, one live run (real heartbeat + host events, real NVML sampler), {IDLE_S:.0f} s: "
          f"{100 * idle_live:.1f}% of one core; no live run: {100 * idle_quiet:.1f}% ({os.cpu_count()} cores)")
    print(f"first paint until the dataset counts, 100x30 answering pseudo-terminal, median of {LAUNCHES}: "
          f"galaxy-tui {ours:.2f} s, minimal Textual app {minimal:.2f} s (ratio {ours / minimal:.2f}), the same "
          f"importing textual-image {minimal_images:.2f} s (ratio {ours / minimal_images:.2f}); Textual's widgets of "
          f"the first screen with no logic {skeleton:.2f} s (ratio {ours / skeleton:.2f}; itself "
          f"{skeleton / minimal:.2f}x the minimal app)")
    print(f"{SCALE_RUNS:,} finished runs: first paint {scale_paint:.2f} s (median of {LAUNCHES}); runs list "
          f"{1000 * per_page:.0f} ms per page over {pages} pages; idle CPU {100 * idle_scale:.1f}% of one core")


if __name__ == "__main__":
    main()
