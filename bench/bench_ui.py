"""The app's event pipeline and its idle cost, measured on the real app (headless, Textual's run_test).

1. Catch-up: 50,000 events are written at full speed into a live run's events.jsonl; we time how long
   the app's model takes to hold all of them, against a plain single-threaded json.loads of the file.
2. Idle: the app watching one live run that writes nothing; its process CPU time over 10 s of wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
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


if __name__ == "__main__":
    main()
