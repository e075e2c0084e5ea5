"""What Pilot tests share: a machine without a GPU, waiting for a condition, and reading the screen."""

from __future__ import annotations

import io
import time

from rich.console import Console
from rich.text import Text
from textual.app import App
from textual.widget import Widget
from textual.widgets import Static

from galaxy_tui.telemetry import Reading


class NoGpu:
    """Simulates a machine without an NVIDIA GPU (what NVML reports here)."""
    available = False

    def sample(self) -> Reading:
        return Reading(False, "no NVIDIA GPU (simulated)")


async def until(pilot, predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.1)


def text_of(app: App, selector: str) -> str:
    """What a Static shows, as plain text (Rich tables included)."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    content = app.screen.query_one(selector, Static).content
    console.print(content if not isinstance(content, str) else Text.from_markup(content))
    return console.file.getvalue()


def screen_text(app: App) -> str:
    """The characters on the (top) screen, line by line, as a person reads them."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())  # noqa: SLF001


def region_text(app: App, widget: Widget) -> str:
    """The characters of one widget's cells on the screen (a plot's title, legend and axes)."""
    region = widget.region
    lines = screen_text(app).splitlines()[region.y:region.bottom]
    return "\n".join(line[region.x:region.right] for line in lines)


async def open_experiment_form(pilot, key: str) -> None:  # noqa: ANN001
    """Experiments pane, once its table is filled, then `key` (e: edit the selected one, n: new, then a blank form)."""
    from textual.widgets import DataTable

    from galaxy_tui.app.dialogs import ChoiceDialog
    from galaxy_tui.app.experiment_form import ExperimentForm
    app = pilot.app
    await pilot.press("2")
    await until(pilot, lambda: app.query_one("#experiments-table", DataTable).row_count >= 1)
    await pilot.press(key)
    if key == "n":
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, ExperimentForm))


async def open_predict_dialog(app: App, pilot, run_id: str) -> None:  # noqa: ANN001
    """As a person would: Results (4) showing the run, then `p`, until the predict dialog is up."""
    from galaxy_tui.app.predict_dialog import PredictDialog
    await pilot.press("4")
    await until(pilot, lambda: run_id in text_of(app, "#results-summary"))
    await pilot.press("p")
    await until(pilot, lambda: isinstance(app.screen, PredictDialog))
