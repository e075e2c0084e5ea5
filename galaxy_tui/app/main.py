"""The workbench app: four panes, a runs list, live run state from disk, and GPU telemetry."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# textual-image asks the terminal about its graphics support once, before Textual takes the terminal over.
import textual_image.widget  # noqa: F401  isort: skip

from textual import events
from textual.app import App, ComposeResult
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal
from textual.content import Content
from textual.geometry import Size
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from galaxy_tui.app.commands import COMMANDS, Command, bindings_for, commands_for, key_label
from galaxy_tui.app.dialogs import HelpScreen
from galaxy_tui.app.doctor_view import DoctorView
from galaxy_tui.app.early_keys import key_events
from galaxy_tui.app.footer import FittingFooter
from galaxy_tui.app.gallery import GalaxyView, TileGallery
from galaxy_tui.app.panes.datasets import DatasetsPane
from galaxy_tui.app.runs_panel import RunsPanel
from galaxy_tui.app.store import RunStore, StoreReader
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.thumbs import ThumbnailStrip, grey_by_default
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import REGISTRY_FILE, Registry, ensure_registry, load_registry, update_registry
from galaxy_tui.telemetry import NvmlTelemetry, TelemetrySampler

if TYPE_CHECKING:
    from textual.widget import Widget

MIN_WIDTH, MIN_HEIGHT = 80, 24
SIDE_BY_SIDE_WIDTH = 136  # from here a 56-column runs list and an 80-column pane are both readable
RUNS_LIST_WIDTH = 56
RUNS_LIST_FIXED = 36  # the runs list's columns but the id: markers, state, epoch, best, padding, border
PANES = ("datasets", "experiments", "monitor", "results")


class CommandsProvider(Provider):
    """Every command of every pane, in the palette, with its key; choosing one switches to its pane."""

    async def discover(self) -> Hits:
        for command in COMMANDS:
            yield DiscoveryHit(self._label(command, Content(command.name)), self._runner(command),
                               text=command.name, help=self._help(command))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            score = matcher.match(f"{command.pane or ''} {command.name} {command.description}")
            if score > 0:
                yield Hit(score, self._label(command, matcher.highlight(command.name)), self._runner(command),
                          text=command.name, help=self._help(command))

    @staticmethod
    def _label(command: Command, name: Content) -> Content:
        return Content.assemble(name, ("  " + key_label(command.key), "bold"))

    @staticmethod
    def _help(command: Command) -> str:
        return f"{command.pane.capitalize()} pane: {command.description}" if command.pane else command.description

    def _runner(self, command: Command):  # noqa: ANN202
        async def run() -> None:
            app = self.app
            if command.pane is None:
                await app.run_action(command.action.removeprefix("app."))
                return
            if command.pane == "runs":
                app.open_runs()  # type: ignore[attr-defined]
                await app.query_one(RunsPanel).run_action(command.action)
                return
            app.action_show_pane(command.pane)  # type: ignore[attr-defined]
            while not app.panes_ready:  # type: ignore[attr-defined]  # chosen in the app's first instant
                await asyncio.sleep(0.02)
            pane = app.query_one(f"#{command.pane}-pane")
            reason = getattr(pane, "disabled_reason", lambda _action: None)(command.action.split("(")[0])
            if reason:  # its key is greyed out in the footer; here the person asked by name: say why
                app.notify(reason, severity="warning", timeout=6)
                return
            await pane.run_action(command.action)
        return run


def later_panes() -> dict[str, Widget]:
    """The panes a first paint does not show, imported and built just after it: their modules (plotext, the
    experiment form, the results views) and widgets are a good part of a start a person waits through."""
    from galaxy_tui.app.panes.experiments import ExperimentsPane
    from galaxy_tui.app.panes.monitor import MonitorPane
    from galaxy_tui.app.panes.results import ResultsPane
    return {"experiments": ExperimentsPane(), "monitor": MonitorPane(), "results": ResultsPane()}


class GalaxyApp(App[None]):
    CSS_PATH = "galaxy.tcss"
    TITLE = "galaxy-tui"
    BINDINGS = bindings_for(None)
    COMMANDS = App.COMMANDS | {CommandsProvider}
    AUTO_FOCUS = None  # on_mount focuses the Datasets table (Textual would pick the tabs)

    def __init__(self, workspace: Path, telemetry: NvmlTelemetry | object | None = None, read_runs: bool = True,
                 typed_early: str = ""):
        super().__init__()
        self.workspace = workspace
        self._typed_early = typed_early  # keys typed while the program started (early_keys)
        self.registry: Registry | None = None
        self.registry_error: str | None = None
        self._registry_mtime = 0.0
        self._load_registry(first=True)
        runs_dir = self.registry.runs_dir if self.registry else workspace / "runs"
        self.store = RunStore(runs_dir)
        self.telemetry = TelemetrySampler(telemetry or NvmlTelemetry())
        self.reader = StoreReader(self.store, self._deliver_scan, self._deliver_events) if read_runs else None
        self._pane_chosen = False  # by a key, or by the first scan
        self.panes_ready = False  # all four built (three are built after the first paint)
        self._waiting_pane: str | None = None
        self._wide, self._runs_open = False, False
        self._screen_width = 0
        self._runs_width: int | None = None
        self.grey_galaxies = False  # set from the terminal's colours once it is known (on_mount)
        self.workspace_label = str(workspace)
        self.show_live_count(0)

    # ------------------------------------------------------------------ registry
    def _load_registry(self, first: bool = False) -> None:
        path = self.workspace / REGISTRY_FILE
        try:
            self.registry = ensure_registry(self.workspace) if first else load_registry(path)
            self.registry_error = None
        except GalaxyError as exc:
            self.registry, self.registry_error = None, str(exc)
        self._registry_mtime = path.stat().st_mtime if path.exists() else 0.0

    def edit_registry(self, mutate: Callable[[dict[str, Any]], object]) -> bool:
        """Apply `mutate` to experiments.toml (validated, written atomically); say why when it cannot be."""
        try:
            self.registry = update_registry(self.workspace / REGISTRY_FILE, mutate)  # type: ignore[arg-type]
        except GalaxyError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return False
        return True

    def watch_registry_file(self) -> None:
        """Pick up hand edits of experiments.toml (and show their errors) without a restart."""
        path = self.workspace / REGISTRY_FILE
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if mtime == self._registry_mtime:
            return
        had_error, before = self.registry_error, self.registry
        self._load_registry()
        if self.registry is not None and before is not None and self.registry.raw == before.raw:
            return  # our own save
        if self.registry_error:
            self.notify(self.registry_error, title="experiments.toml", severity="error", timeout=12)
        elif had_error:
            self.notify("experiments.toml is valid again")
        self._notify_unknown_keys()
        for pane in self.query("#datasets-pane, #experiments-pane"):  # none while the app closes or starts
            pane.reload()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with TabbedContent(id="panes", initial="datasets"):
                with TabPane("1 Datasets", id="datasets"):
                    yield DatasetsPane()
                yield TabPane("2 Experiments", id="experiments")  # filled by _mount_later_panes
                yield TabPane("3 Monitor", id="monitor")
                yield TabPane("4 Results", id="results")
            yield RunsPanel(id="runs-panel")
        yield Static(f"terminal too small: galaxy-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}", id="too-small")
        yield FittingFooter()

    def _notify_unknown_keys(self) -> None:
        for warning in (self.registry.warnings if self.registry else [])[:5]:
            self.notify(warning.split(": ", 1)[-1], title="experiments.toml", severity="warning", timeout=12)

    def on_mount(self) -> None:
        if self.registry_error:
            self.notify(self.registry_error, title="experiments.toml", severity="error", timeout=15)
        self._notify_unknown_keys()
        self.grey_galaxies = grey_by_default(self.console.color_system)
        self.query_one("#datasets-table").focus()  # keys work at once
        self.telemetry.start()
        self.set_interval(2.0, self.watch_registry_file)
        self._check_size()
        self.call_after_refresh(self._mount_later_panes)
        for key in key_events(self._typed_early):
            self.post_message(key)

    async def _mount_later_panes(self) -> None:
        for pane_id, pane in later_panes().items():
            await self.query_one(f"#{pane_id}", TabPane).mount(pane)
        self.panes_ready = True
        if not gc.isenabled():  # turned off for the start by the command line
            gc.freeze()  # what the start built lives as long as the app: later collections need not walk it
            gc.enable()
        if self.reader is not None:  # its scans may choose the Monitor: it must be there
            self.reader.start()
        if self._waiting_pane is not None:  # chosen before it was built
            self.action_show_pane(self._waiting_pane)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)  # self.size may still be the previous one here

    def _check_size(self, size: Size | None = None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        body = self.query_one("#body")
        hidden_before = not body.display
        self.query_one("#too-small").display = small
        body.display = not small
        if hidden_before and not small and self.panes_ready:  # hiding the body took the focus: give it back
            if self._runs_open:
                self.query_one("#runs-table").focus()
            else:
                self.action_show_pane(self.active_pane)
        self._wide = size.width >= SIDE_BY_SIDE_WIDTH
        self._screen_width = size.width
        self._lay_out_runs()

    def _lay_out_runs(self) -> None:
        """From 136 columns the runs list sits beside the pane, always; below, where both could not be
        read, it takes the pane's place while open (r)."""
        panel = self.query_one("#runs-panel")
        panel.set_class(not self._wide, "instead")
        width = None  # narrow: the list takes the pane's place (the `instead` class)
        if self._wide:  # as wide as its longest run id needs, leaving the pane its 80 columns
            longest = max((len(run_id) for run_id in self.store.records), default=0)
            width = max(RUNS_LIST_WIDTH, min(longest + RUNS_LIST_FIXED, self._screen_width - 81))
        if width != self._runs_width:  # every scan lays the list out: only a new width costs a layout
            self._runs_width = width
            panel.styles.width = width
        panel.display = self._wide or self._runs_open
        self.query_one("#panes").display = self._wide or not self._runs_open

    @property
    def active_pane(self) -> str:
        return str(self.query_one("#panes", TabbedContent).active)

    # ------------------------------------------------------------------ the reader's deliveries
    def _deliver_events(self, run_id: str, events: list) -> None:
        deliver(self, self.store.apply_events, run_id, events)

    def _deliver_scan(self, infos: list, notes: dict) -> None:
        deliver(self, self._apply_scan, infos, notes)

    def _apply_scan(self, infos: list, notes: dict) -> None:
        self.store.apply_scan(infos, notes)
        self.show_live_count(self.store.live_count)
        self._lay_out_runs()
        if not self._pane_chosen:  # reopened while a run is live: its Monitor, unless a key chose already
            self._pane_chosen = True
            if self.store.live_count and len(self.screen_stack) == 1:
                self.action_show_pane("monitor")

    def select_run(self, run_id: str) -> None:
        """A run chosen in the runs list: the Monitor's on the Monitor, the Results' on Results; from
        another pane, a live run goes to the Monitor and an ended one to Results."""
        record = self.store.records.get(run_id)
        pane = self.active_pane
        if pane not in ("monitor", "results"):
            pane = "monitor" if record is not None and record.info.is_live else "results"
        if not self._wide:
            self._runs_open = False
            self._lay_out_runs()
        if pane != self.active_pane or not self._wide:
            self.action_show_pane(pane)
        if pane == "results":
            self.store.browse(run_id)
        else:
            self.pin_run(run_id)

    def pin_run(self, run_id: str | None) -> None:
        self.store.pin(run_id)
        if self.reader is not None:
            self.reader.wake.set()

    def show_live_count(self, live: int) -> None:
        """The count comes first: it is what a narrow header must not cut."""
        self.sub_title = f"{live} run{'s' if live != 1 else ''} live · {self.workspace_label}"

    def run_launched(self, run_id: str) -> None:
        self.pin_run(run_id)
        self.action_show_pane("monitor")
        self.notify(f"launched {run_id}")

    # ------------------------------------------------------------------ actions
    def action_show_pane(self, pane: str) -> None:
        if pane in PANES and self._runs_open and not self._wide:  # the list stood in the pane's place
            self._runs_open = False
            self._lay_out_runs()
        if pane in PANES:
            self._pane_chosen = True  # focus moves later: a scan arriving meanwhile must not undo the choice
            self.query_one("#panes", TabbedContent).active = pane
            focus = {"datasets": "#datasets-table", "experiments": "#experiments-table",
                     "monitor": "#monitor-pane", "results": "#results-pane"}[pane]
            if not self.query(focus):  # not built yet: shown and focused once it is
                self._waiting_pane = pane
                return
            self._waiting_pane = None
            widget = self.query_one(focus)
            if widget.focusable:  # at once, not later: a key read in the same batch must reach the new pane
                self.screen.set_focus(widget)

    def action_toggle_runs(self) -> None:
        if self.focused is self.query_one("#runs-table", DataTable):
            self.close_runs()
            return
        self.open_runs()

    def open_runs(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        self._runs_open = True
        self._lay_out_runs()
        self.query_one(RunsPanel).refresh_rows()  # current rows before the first key lands on them
        self.screen.set_focus(table)

    def close_runs(self) -> None:
        self._runs_open = False
        self._lay_out_runs()
        self.action_show_pane(self.active_pane)

    def action_toggle_grey(self) -> None:
        self.grey_galaxies = not self.grey_galaxies
        self.query_one(ThumbnailStrip).redraw()
        for results in self.query("#results-pane"):
            results.redraw_galaxies()  # type: ignore[attr-defined]
        for screen in self.screen_stack:  # the gallery and the large view, where open, at once
            if isinstance(screen, (TileGallery, GalaxyView)):
                screen.redraw_galaxies()
        self.notify(f"galaxies in {'grey' if self.grey_galaxies else 'colour'}", timeout=2)

    def action_doctor(self) -> None:
        self.push_screen(DoctorView(self.workspace))

    def action_help(self) -> None:
        in_runs = self.focused is not None and self.query_one(RunsPanel) in self.focused.ancestors_with_self
        pane = "runs" if in_runs else self.active_pane
        where = "the runs list" if in_runs else f"{pane} pane"
        self.push_screen(HelpScreen(f"Keys: {where} and everywhere", commands_for(pane)))

    def action_quit_app(self) -> None:
        live = [r.info.id for r in self.store.records.values() if r.info.is_live]
        message = (f"{len(live)} run(s) keep running in the background: {', '.join(live)}. "
                   f"Run galaxy-tui again to watch them.") if live else None
        self.exit(message=message)

    def on_unmount(self) -> None:
        self.telemetry.stop()
        if self.reader is not None:
            self.reader.stopping.set()


def run_app(workspace: Path, typed_early: str = "") -> int:
    """Textual prints an unexpected exception's traceback itself; the exit status then says it failed."""
    app = GalaxyApp(workspace, typed_early=typed_early)
    app.run()
    return app.return_code or 0
