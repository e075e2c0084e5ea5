"""Full-screen, read-only views a person opens for a moment: what changed between two runs, a run's
whole worker.log."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, Log, Static

from galaxy_tui.app.footer import FittingFooter
from galaxy_tui.errors import GalaxyError
from galaxy_tui.records.config_diff import Change, changes_table, run_changes


class ConfigDiffScreen(ModalScreen[None]):
    """The keys whose values differ between two runs' frozen configs."""

    AUTO_FOCUS = "#diff-body"
    BINDINGS = [Binding("escape,q,d", "dismiss(None)", "Close")]

    def __init__(self, first: str, second: str, changes: list[Change]):
        super().__init__(id="config-diff")
        self.first, self.second, self.changes = first, second, changes

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="diff-body"):
            yield Label("What changed from run A to run B", classes="question")
            yield Static(Text.assemble(("A ", "bold red"), self.first, "\n", ("B ", "bold green"), self.second))
            if self.changes:
                yield Static(changes_table(self.changes, "A", "B", box=None, padding=(0, 1), expand=True,
                                           header_style="bold"))
            else:
                yield Static("the two runs have the same configuration")
            yield Static("Escape closes", classes="hint")


def show_config_diff(app: App, first: tuple[str, Path], second: tuple[str, Path]) -> None:
    """What changed from run `first` to run `second` ((id, folder) each), or why it cannot be said."""
    try:
        changes = run_changes(first[1], second[1])
    except GalaxyError as exc:
        app.notify(str(exc), severity="error", timeout=10)
        return
    app.push_screen(ConfigDiffScreen(first[0], second[0], changes))


LOG_TAIL_BYTES = 32 << 20  # a longer worker.log is shown from its last 32 MiB (the view says so)


class LogScreen(Screen[None]):
    """A run's worker.log, whole, scrollable and searchable; it keeps following the file while the run
    writes to it (unless the person scrolled up)."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Close"), Binding("slash", "search", "Search"),
                Binding("n", "next_match(1)", "Next match"), Binding("N", "next_match(-1)", "Previous match"),
                Binding("home", "top", "Top", show=False), Binding("end", "bottom", "End", show=False)]

    def __init__(self, path: Path):
        super().__init__(id="log-view")
        self.path = path
        self._offset = 0
        self._partial = ""
        self._lines: list[str] = []
        self._query = ""
        self._match = -1

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield Log(id="log-body", auto_scroll=True)
        yield Input(placeholder="search the log (Enter; n / N next and previous)", id="log-search")
        yield Static("", id="log-status")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#log-search").display = False
        self._read_more()
        self.query_one(Log).focus()
        self.set_interval(1.0, self._read_more)

    def _read_more(self) -> None:
        try:
            size = self.path.stat().st_size
            if size < self._offset:  # rewritten: start again
                self._offset, self._partial, self._lines = 0, "", []
                self.query_one(Log).clear()
            start = max(self._offset, size - LOG_TAIL_BYTES)
            with open(self.path, "rb") as handle:
                handle.seek(start)
                data = handle.read(size - start)
        except FileNotFoundError:
            data, size, start = b"", 0, 0
        cut = start > self._offset
        self._offset = size
        text = self._partial + data.decode("utf-8", errors="replace")
        *complete, self._partial = text.split("\n")
        if cut:  # the first read of a long log: drop the partial first line
            complete = complete[1:]
        if complete:
            self._lines += complete
            self.query_one(Log).write_lines(complete)
        self._show_status(f"the last {LOG_TAIL_BYTES >> 20} MiB" if cut else "")

    def _show_status(self, note: str = "") -> None:
        matches = self._matches()
        found = (f"“{self._query}”: {len(matches)} line(s)" + (f", at {matches.index(self._match) + 1}"
                 if self._match in matches else "")) if self._query else "/ searches"
        self.query_one("#log-title", Static).update(Text.assemble(
            (str(self.path), "bold"), f" · {len(self._lines):,} lines" + (f" ({note})" if note else ""),
            (f" · {found} · Escape closes", "dim")))

    def _matches(self) -> list[int]:
        query = self._query.lower()
        return [i for i, line in enumerate(self._lines) if query in line.lower()] if query else []

    def action_search(self) -> None:
        field = self.query_one("#log-search", Input)
        field.display = True
        field.value = self._query
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._query, self._match = event.value.strip(), -1
        event.input.display = False
        self.query_one(Log).focus()
        self.action_next_match(1)

    def action_next_match(self, direction: int) -> None:
        matches = self._matches()
        if not matches:
            self._show_status()
            if self._query:
                self.query_one("#log-status", Static).update(Text(f"no line holds “{self._query}”", style="yellow"))
            return
        after = [i for i in matches if (i > self._match if direction > 0 else i < self._match)]
        self._match = (after[0] if direction > 0 else after[-1]) if after else \
            (matches[0] if direction > 0 else matches[-1])  # wraps around
        log = self.query_one(Log)
        log.auto_scroll = False
        log.scroll_to(y=max(0, self._match - log.size.height // 2), animate=False)
        self.query_one("#log-status", Static).update(Text.assemble(
            (f"line {self._match + 1}: ", "bold yellow"), (self._lines[self._match], "yellow")))
        self._show_status()

    def action_top(self) -> None:
        log = self.query_one(Log)
        log.auto_scroll = False
        log.scroll_home(animate=False)

    def action_bottom(self) -> None:
        log = self.query_one(Log)
        log.auto_scroll = True  # following the file again
        log.scroll_end(animate=False)
