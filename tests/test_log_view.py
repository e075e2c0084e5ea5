"""The worker.log view: the whole log, full-screen, searched with / and n / N, following the file."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Log

from fixture_runs import fixture_workspace
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.views import LogScreen
from pilot_helpers import NoGpu, text_of, until

FINISHED = "demo-tiny-20261101-120000"


async def test_the_whole_log_is_searched_and_followed(tmp_path: Path) -> None:
    root = fixture_workspace(tmp_path)
    log_file = root / "runs" / FINISHED / "worker.log"
    log_file.write_text("".join(f"12:00:00 step step={i} loss=0.{i % 97:02d}\n" for i in range(5000)) +
                        "12:30:00 warning message=grad norm is inf at step 4321\n" +
                        "".join(f"12:31:00 epoch epoch={e} val_acc=0.9\n" for e in range(3)))
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.store.current is not None)
        await pilot.press("3", "w")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and "5,004 lines" in text_of(app, "#log-title"))
        log = app.screen.query_one(Log)
        assert log.line_count == 5004
        await pilot.press("slash")
        await pilot.press(*"GRAD NORM", "enter")  # any case
        await until(pilot, lambda: "line 5001:" in text_of(app, "#log-status"))
        assert log.scroll_y <= 5000 <= log.scroll_y + log.size.height  # the line is on screen
        await pilot.press("slash")
        app.screen.query_one("#log-search").value = "epoch="
        await pilot.press("enter")
        await until(pilot, lambda: "line 5002:" in text_of(app, "#log-status"))
        await pilot.press("n", "n")
        await until(pilot, lambda: "line 5004:" in text_of(app, "#log-status"))
        await pilot.press("n")  # wraps to the first match
        await until(pilot, lambda: "line 5002:" in text_of(app, "#log-status"))
        await pilot.press("slash")
        app.screen.query_one("#log-search").value = "nowhere"
        await pilot.press("enter")
        await until(pilot, lambda: "no line holds" in text_of(app, "#log-status"))
        with log_file.open("a") as handle:  # the run writes on: the view follows
            handle.write("12:40:00 finished accuracy=0.95\n")
        await until(pilot, lambda: "5,005 lines" in text_of(app, "#log-title"), timeout=10)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen))
