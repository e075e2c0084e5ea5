"""The runs list: every run, state coloured, with its tags; ▶ marks the Monitor's run, ◆ the Results' run,
● the runs marked for a diff or an export. `/` filters it; the filter is kept for the next start."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static

from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.dialogs import InputDialog, confirm
from galaxy_tui.app.ensemble_offer import offer_ensemble
from galaxy_tui.app.run_state import state_text
from galaxy_tui.app.store import RunRecord
from galaxy_tui.app.views import show_config_diff
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.records.export import export_metrics
from galaxy_tui.records.notes import parse_tags, write_notes
from galaxy_tui.records.run_filter import RunFilter, parse_filter, run_facts
from galaxy_tui.runs import delete_run

UI_STATE_FILE = "ui-state.json"


class RunsPanel(Vertical):
    BINDINGS = bindings_for("runs")

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._version = -1
        self.filter = RunFilter("", ())

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: text state:finished exp:gz2 #tag acc>0.9", id="runs-filter")
        yield Static("", id="runs-filter-status")
        yield WholeTable(id="runs-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(WholeTable).set_columns(("run", "state", "epoch", "best"))
        self.query_one("#runs-filter").display = False
        saved = str((read_json(self._state_path) or {}).get("runs_filter") or "")
        try:
            self.filter = parse_filter(saved)
        except GalaxyError:
            self.filter = RunFilter("", ())
        self.set_interval(0.5, self.refresh_rows)  # the panel's own timer: it stops when the panel goes

    @property
    def _state_path(self) -> Path:
        registry = self.app.registry  # type: ignore[attr-defined]
        return (registry.cache_dir if registry else self.app.workspace / "cache") / UI_STATE_FILE  # type: ignore[attr-defined]

    @property
    def table(self) -> WholeTable:
        return self.query_one("#runs-table", WholeTable)

    def _shown(self, records: list[RunRecord]) -> list[RunRecord]:
        if not self.filter.predicates:
            return records
        return [r for r in records if self.filter(run_facts(r.info, r.metrics, r.notes.tags, r.notes.note))]

    def refresh_rows(self, force: bool = False) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        if store.runs_version == self._version and not force:
            return
        self._version = store.runs_version
        table = self.table
        every = store.ordered()
        records = self._shown(every)
        cursor_key = None
        if table.row_count:
            cursor_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        monitored, browsed = store.selected, store.browsed_record
        rows = []
        for record in records:
            info = record.info
            marker = ("●" if info.id in store.marked else " ") + ("▶" if info.id == monitored else " ") + \
                     ("◆" if record is browsed else " ")
            name = Text(marker + info.id)
            below = [Text(f"waits: {info.reason}", style="yellow")] if info.reason else []  # Slurm's why
            below += [Text(" ".join(f"#{t}" for t in record.notes.tags), style="cyan")] if record.notes.tags else []
            note = record.notes.note.strip()
            below += [Text(note.splitlines()[0], style="italic")] if note else []
            if below:  # on a second line, no wider than the id: the list is narrow beside a pane
                line = Text("  ").join(below)
                line.truncate(max(len(info.id), 24), overflow="ellipsis")
                name.append("\n   ").append(line)
            rows.append(Row(info.id, (name, state_text(info.state), info.epoch_text, info.best_text),
                            2 if below else 1))
        table.set_rows(rows)
        self._show_filter_status(len(records), len(every))
        ids = [r.info.id for r in records]
        keep = cursor_key if cursor_key in ids else store.selected
        if keep in ids and table.cursor_row != ids.index(keep):  # the cursor stays where the user left it: at
            table.cursor_coordinate = Coordinate(ids.index(keep), 0)  # once (move_cursor waits for a refresh,
            # and a Down pressed before it would be undone)

    def _show_filter_status(self, shown: int, total: int) -> None:
        status = self.query_one("#runs-filter-status", Static)
        status.display = bool(self.filter.text)
        if self.filter.text:
            status.update(Text.assemble(("filter ", "dim"), (self.filter.text, "bold"),
                                        (f" · {shown} of {total} runs · / edit · Esc clears", "dim")))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.select_run(str(event.row_key.value))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the runs the keys act on
    @property
    def cursor_run(self) -> RunRecord | None:
        table = self.table
        if not table.row_count:
            return None
        run_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.app.store.records.get(str(run_id))  # type: ignore[attr-defined]

    def _chosen(self) -> list[RunRecord]:
        """The marked runs, else the one under the cursor."""
        store = self.app.store  # type: ignore[attr-defined]
        marked = [store.records[run_id] for run_id in store.marked if run_id in store.records]
        if marked:
            return marked
        return [self.cursor_run] if self.cursor_run else []

    # ------------------------------------------------------------------ filter
    def action_filter(self) -> None:
        field = self.query_one("#runs-filter", Input)
        field.value = self.filter.text
        field.display = True
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "runs-filter":
            return
        event.stop()
        try:
            self.filter = parse_filter(event.value)
        except GalaxyError as exc:  # said under the field, which stays open for the fix
            status = self.query_one("#runs-filter-status", Static)
            status.display = True
            status.update(Text(str(exc), style="red"))
            return
        event.input.display = False
        self._save_filter()
        self.refresh_rows(force=True)
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        field = self.query_one("#runs-filter", Input)
        if event.key != "escape":
            return
        if field.has_focus:  # leave the field as it was
            field.display = False
            self.table.focus()
            event.stop()
        elif self.filter.text:
            self.filter = RunFilter("", ())
            self._save_filter()
            self.refresh_rows(force=True)
            event.stop()

    def _save_filter(self) -> None:
        path = self._state_path
        state = read_json(path) or {}
        state["runs_filter"] = self.filter.text
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, state)
        except OSError as exc:
            self.app.notify(f"the filter could not be kept for the next start ({exc})", severity="warning")

    # ------------------------------------------------------------------ bookkeeping
    def action_mark(self) -> None:
        record = self.cursor_run
        if record is None:
            return
        self.app.store.toggle_mark(record.info.id)  # type: ignore[attr-defined]
        self.refresh_rows()
        self.table.action_cursor_down()

    def action_tags(self) -> None:
        record = self.cursor_run
        if record is not None:
            self._edit_notes(f"Tags of {record.info.id} (spaces or commas between them):",
                             " ".join(record.notes.tags), "baseline lr-sweep",
                             lambda value: write_notes(record.info.dir, parse_tags(value), record.notes.note))

    def action_note(self) -> None:
        record = self.cursor_run
        if record is not None:
            self._edit_notes(f"Note on {record.info.id}:", record.notes.note, "what this run tried, what it showed",
                             lambda value: write_notes(record.info.dir, record.notes.tags, value))

    def _edit_notes(self, prompt: str, value: str, placeholder: str, write: Callable[[str], object]) -> None:
        def typed(typed_value: str | None) -> None:
            if typed_value is None:
                return
            try:
                write(typed_value)
            except GalaxyError as exc:
                self.app.notify(str(exc), severity="error", timeout=10)
                return
            self._reread()

        self.app.push_screen(InputDialog(prompt, value, placeholder=placeholder), typed)

    def _reread(self) -> None:
        reader = self.app.reader  # type: ignore[attr-defined]
        if reader is not None:
            reader.wake.set()

    def action_diff(self) -> None:
        chosen = self._chosen()
        cursor = self.cursor_run
        if len(chosen) == 1 and cursor is not None and cursor is not chosen[0]:
            chosen.append(cursor)
        if len(chosen) != 2:
            self.app.notify("a diff needs two runs: mark one with space, then press d on the other "
                            "(or mark both)", severity="warning", timeout=6)
            return
        show_config_diff(self.app, *((r.info.id, r.info.dir) for r in chosen))

    def action_ensemble(self) -> None:
        offer_ensemble(self.app)

    def action_export(self) -> None:
        chosen = self._chosen()
        if not chosen:
            return
        out = self.app.workspace / "exports" / f"metrics-{time.strftime('%Y%m%d-%H%M%S')}.csv"  # type: ignore[attr-defined]
        try:
            rows = export_metrics([r.info.dir for r in chosen], out)
        except (GalaxyError, OSError) as exc:
            self.app.notify(f"the export failed: {exc}", severity="error", timeout=10)
            return
        self.app.notify(f"{len(chosen)} run(s), {rows} rows: {out}", title="metrics exported", timeout=10)

    def action_delete(self) -> None:
        record = self.cursor_run
        if record is None:
            return
        if record.info.is_live:
            self.app.notify(f"{record.info.id} is {record.info.state}: stop it first (Monitor, s)",
                            severity="warning", timeout=6)
            return

        def answered(answer: str | None) -> None:
            if answer != "yes":
                return
            try:
                delete_run(self.app.registry, record.info.id)  # type: ignore[attr-defined]
            except GalaxyError as exc:
                self.app.notify(str(exc), severity="error", timeout=10)
                return
            self.app.notify(f"deleted {record.info.id}")
            self._reread()

        self.app.push_screen(confirm(f"Delete run {record.info.id} ({record.info.state}, "
                                     f"epoch {record.info.epoch}/{record.info.epochs})? Its folder, checkpoints "
                                     f"and results are removed; this cannot be undone.", "Delete", "Keep"), answered)
