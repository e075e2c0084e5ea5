"""Pictures of each pane at 80x24 and 160x48, from hand-written run folders, a simulated GPU and no clock.

Update after an intended change of look: pytest tests/test_snapshots.py --snapshot-update (and look at them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from fixture_runs import FrozenTelemetry, fixture_workspace
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.panes.mistakes_grid import MistakeCell
from galaxy_tui.app.thumbs import ThumbnailStrip


def _app(tmp_path: Path) -> GalaxyApp:
    app = GalaxyApp(fixture_workspace(tmp_path / "ws"))
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    return app


async def _until(pilot: Pilot, ready, timeout: float = 60.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.05)):
        if ready():
            return
        await pilot.pause(0.05)
    raise AssertionError("the fixture never settled")


async def _settle(pilot: Pilot, pane_key: str) -> None:
    app = pilot.app
    app.workspace_label = "fixture workspace"
    await _until(pilot, lambda: app.store.current is not None and app.store.current.model.epochs)
    if pane_key == "1":
        await _until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "demo")
    await pilot.press(pane_key)
    if pane_key == "4":
        await _until(pilot, lambda: len(app.query(MistakeCell)) == 4)
    await pilot.pause(1.2)  # slow repaint timers (gauges, log) run at least once
    app.query_one("#monitor-pane").repaint_slow()
    if pane_key == "3":  # under load the gauges' rows may still be mounting: wait for them, then settle
        await _until(pilot, lambda: len(app.query("#gauge-grid Sparkline")) > 0)
        app.query_one("#monitor-pane").repaint_slow()
    await pilot.pause(0.5)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("pane", ["1", "2", "3", "4"], ids=["datasets", "experiments", "monitor", "results"])
def test_pane_snapshot(snap_compare, tmp_path: Path, pane: str, size: tuple[int, int]) -> None:  # noqa: ANN001
    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot, pane)

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)
