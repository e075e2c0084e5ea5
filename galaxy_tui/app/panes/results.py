"""Results pane: test metrics, the confusion matrix as a heat-map, per-class scores, the mistakes, a comparison."""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from galaxy_tui.analysis.calibration_figures import (
    calibration_line,
    draw_confidence,
    draw_reliability,
    draw_threshold_accuracy,
    draw_threshold_counts,
    threshold_table,
)
from galaxy_tui.analysis.comparison import Comparability, comparability
from galaxy_tui.analysis.derived_results import derived_from, is_derived
from galaxy_tui.analysis.domain import domain_note
from galaxy_tui.analysis.fraction_figures import FractionPredictions, draw_residuals, draw_scatter
from galaxy_tui.analysis.task_results import results_of
from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.curation_view import open_curation, similar_in_run
from galaxy_tui.app.ensemble_offer import offer_ensemble
from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.gallery import Galaxy, GalaxyView
from galaxy_tui.app.panes.compare_view import (
    COMPARE_COLUMNS,
    OVERLAY_RUNS,
    compare_rows,
    draw_overlay,
    groups_text,
    validation_curves,
)
from galaxy_tui.app.panes.mistakes_grid import (
    MistakeCell,
    MistakesGrid,
    mistake_orders,
)
from galaxy_tui.app.panes.result_figures import heatmap
from galaxy_tui.app.predict_dialog import PredictDialog
from galaxy_tui.app.store import RunRecord
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.views import show_config_diff
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_config
from galaxy_tui.task_kinds import VOTE_FRACTIONS


class ResultsPane(Widget, can_focus=True):
    BINDINGS = bindings_for("results")

    def __init__(self) -> None:
        super().__init__(id="results-pane")
        self.normalised = False
        self.sort_column = COMPARE_COLUMNS.index("test")
        self._comparability: dict[str, tuple[float, Comparability]] = {}  # run -> (split.csv mtime, ...)
        self._groups: dict[str, int] = {}  # run -> its comparability group (1 = the first met)
        self._group_keys: list[Comparability] = []
        self._shown: tuple[str | None, float] = (None, -1.0)
        self._compare_version = -1
        self._overlaid: tuple[list, str] | None = None
        self.mistake_order = "confidence"
        self.show_thresholds = False  # the Calibration tab shows accuracy by vote threshold instead
        self._has_votes = False
        self.answer_index = 0
        self._predictions: FractionPredictions | None = None

    def compose(self) -> ComposeResult:
        with TabbedContent(id="results-tabs"):
            with TabPane("Summary", id="tab-summary"):
                with VerticalScroll(id="summary-scroll"):  # focused on `s`: arrows and PgDn scroll it
                    yield Static("no finished run selected", id="results-summary")
                    yield Static("", id="results-confusion")
                    yield Static("", id="results-per-class")
                    yield Static("", id="results-thresholds")
            with TabPane("Mistakes", id="tab-mistakes"):
                yield Static("", id="mistakes-order")
                yield MistakesGrid(id="mistakes-grid")
            with TabPane("Answers", id="tab-answers"):
                yield Static("", id="answers-heading")
                with Horizontal(id="answers-plots"):
                    yield PlotextPlot(id="answer-scatter")
                    yield PlotextPlot(id="residual-plot")
            with TabPane("Compare", id="tab-compare"):
                yield Static("", id="compare-groups")
                yield WholeTable(id="compare-table", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="compare-plot")

    def on_mount(self) -> None:
        if not self.query("#compare-table"):
            return  # the app is closing while the pane, built after the first paint, was still being mounted
        self.query_one("#compare-table", WholeTable).set_columns(COMPARE_COLUMNS,
                                                                 squeeze=("experiment", "tags", "note"))
        self.set_interval(0.5, self.repaint)

    def repaint(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        if not self.display:
            return
        record = store.browsed_record
        key = (record.info.id if record else None, record.metrics_mtime if record else 0.0)
        if key != self._shown:
            self._shown = key
            self.show_run(record)
        if store.version != self._compare_version:
            self._compare_version = store.version
            self._compare(store.ordered())

    def show_run(self, record: RunRecord | None) -> None:
        summary = self.query_one("#results-summary", Static)
        if record is None or not record.metrics:
            summary.update("no results yet for this run" if record else "no run selected")
            self.query_one("#results-confusion", Static).update("")
            self.query_one("#results-per-class", Static).update("")
            self.query_one("#results-thresholds", Static).update("")
            self.call_later(self._mount_mistakes, None)
            return
        m, view = record.metrics, results_of(record.metrics)
        self._show_summary(record)
        self._confusion(m)
        self.query_one("#results-per-class", Static).update(view.outputs_table(m) or "")
        self.query_one("#results-thresholds", Static).update(threshold_table(m) if m.get("thresholds") else "")
        self.call_later(self._mount_mistakes, record)
        self._predictions = None
        self.query_one("#results-tabs", TabbedContent).get_tab("tab-answers").label = view.answers_tab
        if view.kind is VOTE_FRACTIONS:  # the third tab: predicted against true answers, else calibration
            self._load_predictions(record.info.dir / "results" / "predictions.csv")
        else:
            self._show_calibration(m)

    def _show_summary(self, record: RunRecord) -> None:
        summary, m = self.query_one("#results-summary", Static), record.metrics or {}
        domain = domain_note(m)
        summary.update(pack_fields([Text(record.info.id, style="bold"), *results_of(m).headline_fields(m),
                                    *([Text(domain, style="dim")] if domain else [])],
                                   max(20, (summary.content_size.width or self.size.width) - 2)))

    def _confusion(self, metrics: dict) -> None:
        view = results_of(metrics)
        matrix = view.matrix(metrics)
        self.query_one("#results-confusion", Static).update(
            heatmap(matrix.classes, matrix.counts, self.normalised, matrix.title) if matrix is not None
            else Text(view.no_matrix, style="dim"))

    async def _mount_mistakes(self, record: RunRecord | None) -> None:
        grid = self.query_one("#mistakes-grid", MistakesGrid)
        heading = self.query_one("#mistakes-order", Static)
        self._has_votes, self.mistake_order = await grid.show(record, heading, self.mistake_order)

    def _cleared_plots(self) -> tuple[PlotextPlot, PlotextPlot]:
        """The Answers/Calibration tab's two plots, emptied for the next figures."""
        plots = self.query_one("#answer-scatter", PlotextPlot), self.query_one("#residual-plot", PlotextPlot)
        for widget in plots:
            widget.plt.clear_data()
            widget.plt.clear_figure()
        return plots

    def _show_calibration(self, metrics: dict) -> None:
        """A classification result's Calibration tab (the Answers tab of vote-fraction runs): calibration, or
        (`a` again, where the dataset has votes) accuracy against the vote threshold."""
        self._predictions = None
        heading = self.query_one("#answers-heading", Static)
        plots = self._cleared_plots()
        has_curve = bool(metrics.get("thresholds"))
        again = Text("  a: accuracy by vote threshold" if has_curve else "", style="dim")
        if self.show_thresholds and has_curve:
            heading.update(Text.assemble(
                "accuracy on galaxies never trained on, labelled at each vote threshold (fewer, surer galaxies "
                "as it rises)", ("  a: calibration", "dim")))
            draw_threshold_accuracy(plots[0].plt, metrics)
            draw_threshold_counts(plots[1].plt, metrics)
        elif line := calibration_line(metrics):
            heading.update(Text.assemble(line, again))
            draw_reliability(plots[0].plt, metrics)
            draw_confidence(plots[1].plt, metrics)
        else:
            heading.update(Text.assemble(("no calibration figures: this run was evaluated before they were "
                                          "measured", "dim"), again))
        for widget in plots:
            widget.refresh()

    @work(thread=True, exclusive=True, group="predictions")
    def _load_predictions(self, path: Path | None) -> None:
        deliver(self.app, self._show_answers, None if path is None else FractionPredictions.read(path))

    def _show_answers(self, predictions: FractionPredictions | None) -> None:
        self._predictions = predictions
        heading = self.query_one("#answers-heading", Static)
        scatter, residuals = self._cleared_plots()
        if predictions is None or not predictions.answers:
            heading.update(Text("predicted vs true answers are shown for vote-fraction runs (task = "
                                "\"vote-fractions\")", style="dim"))
        else:
            self.answer_index %= len(predictions.answers)
            answer = predictions.answers[self.answer_index]
            heading.update(Text.assemble(("answer ", "bold"), (answer, "bold green"),
                                         f" ({self.answer_index + 1} of {len(predictions.answers)}, "
                                         f"{len(predictions.ids)} galaxies)",
                                         ("  a: next answer · A: previous", "dim")))
            draw_scatter(scatter.plt, predictions, answer)
            draw_residuals(residuals.plt, predictions)
        scatter.refresh()
        residuals.refresh()

    @work(thread=True, exclusive=True, group="compare")
    def _compare(self, records: list[RunRecord]) -> None:
        """Group the finished runs by what makes them comparable (a thread: it hashes each split.csv once),
        then fill the table."""
        keys: dict[str, Comparability] = {}
        for record in records:
            if not record.metrics:
                continue
            try:
                keys[record.info.id] = self._comparability_of(record)
            except GalaxyError:  # a damaged folder with no frozen config: nothing to compare it by
                continue
        deliver(self.app, self._fill_compare, [record for record in records if record.info.id in keys], keys)

    def _comparability_of(self, record: RunRecord) -> Comparability:
        split = record.info.dir / "split.csv"
        mtime = split.stat().st_mtime if split.exists() else 0.0
        known = self._comparability.get(record.info.id)
        if known is None or known[0] != mtime:
            known = (mtime, comparability(record.info))
            self._comparability[record.info.id] = known
        return known[1]

    def _fill_compare(self, records: list[RunRecord], keys: dict[str, Comparability]) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        table = self.query_one("#compare-table", WholeTable)
        self._group_keys = list(dict.fromkeys(keys.values()))
        self._groups = {run_id: self._group_keys.index(key) + 1 for run_id, key in keys.items()}
        rows, descending = compare_rows(records, self._groups, store.marked, self.sort_column)
        table.relabel([column + (" ▼" if descending else " ▲") * (index == self.sort_column)  # the sorted one says so
                       for index, column in enumerate(COMPARE_COLUMNS)])
        table.set_rows([Row(run_id, cells) for *cells, run_id in rows])
        self._describe_groups()
        self._overlay()

    def _describe_groups(self) -> None:
        groups = self.query_one("#compare-groups", Static)
        table = self.query_one("#compare-table", DataTable)
        under_cursor = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) \
            if table.row_count else None
        groups.update(groups_text(self._group_keys, self._groups, under_cursor,
                                  max(20, (groups.content_size.width or self.size.width) - 1)))

    def _overlay(self) -> None:
        """The validation curves of the runs marked in the runs list, else of the first rows as sorted."""
        store = self.app.store  # type: ignore[attr-defined]
        marked, table = store.marked, self.query_one("#compare-table", DataTable)
        if marked:
            chosen, title = marked[:OVERLAY_RUNS], "validation score by epoch: the marked runs"
        else:
            trained = [str(key.value) for key in table.rows  # ensembles and boosted results have no curves
                       if str(key.value) in store.records
                       and not is_derived(store.records[str(key.value)].metrics)]
            chosen = trained[:OVERLAY_RUNS]
            title = f"val score: first {len(chosen)} trained runs as sorted (space marks, e combines)"
        folders = [(run_id, store.records[run_id].info.dir) for run_id in chosen if run_id in store.records]
        if (folders, title) != self._overlaid:
            self._overlaid = (folders, title)
            self._read_curves(folders, title)

    @work(thread=True, exclusive=True, group="overlay")
    def _read_curves(self, folders: list[tuple[str, Path]], title: str) -> None:
        deliver(self.app, self._draw_overlay, validation_curves(folders), title)

    def _draw_overlay(self, curves: list[tuple[str, list[float], list[float]]], title: str) -> None:
        widget = self.query_one("#compare-plot", PlotextPlot)
        draw_overlay(widget.plt, curves, title)
        widget.refresh()

    def redraw_galaxies(self) -> None:
        self._shown = (None, -1.0)

    def on_resize(self) -> None:
        self.call_after_refresh(self._repack_summary)

    def _repack_summary(self) -> None:
        """The summary's figures are packed to the width: pack them again, for the run shown by then (a run
        without results keeps saying so)."""
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if record is not None and record.metrics and self._shown[0] == record.info.id:
            self._show_summary(record)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "compare-table" and self._group_keys:
            self._describe_groups()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "compare-table":  # Enter on a compared run: its summary
            self.app.store.browse(str(event.row_key.value))  # type: ignore[attr-defined]
            self.action_results_tab("tab-summary")

    # ------------------------------------------------------------------ actions
    def action_results_tab(self, tab: str) -> None:
        self.query_one("#results-tabs", TabbedContent).active = tab
        if tab == "tab-mistakes":
            cells = list(self.query(MistakeCell))
            if cells:
                cells[0].focus()
        elif tab == "tab-compare":
            self.query_one("#compare-table", DataTable).focus()
        else:
            self.query_one("#summary-scroll", VerticalScroll).focus()

    def action_answers(self, step: int) -> None:
        """Show the Answers tab; when it is already shown, step to another answer."""
        tabs = self.query_one("#results-tabs", TabbedContent)
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if tabs.active == "tab-answers" and self._predictions is not None:
            self.answer_index += step
            self._show_answers(self._predictions)
        elif tabs.active == "tab-answers" and record is not None and (record.metrics or {}).get("thresholds"):
            self.show_thresholds = not self.show_thresholds
            self._show_calibration(record.metrics)
        tabs.active = "tab-answers"
        self.focus()  # the summary's scroll, if it had the focus, is hidden now

    def on_focus(self) -> None:
        """Arriving on the pane, the arrows scroll the summary (a vote-fraction run's is taller than a screen)."""
        if self.query_one("#results-tabs", TabbedContent).active == "tab-summary":
            self.query_one("#summary-scroll", VerticalScroll).focus()

    def action_toggle_normalised(self) -> None:
        self.normalised = not self.normalised
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if record and record.metrics:
            self._confusion(record.metrics)

    def action_sort_next(self) -> None:
        if self.query_one("#results-tabs", TabbedContent).active == "tab-mistakes":
            self._sort_mistakes()
            return
        self.sort_column = (self.sort_column + 1) % len(COMPARE_COLUMNS)
        self._compare_version = -1
        self.app.notify(f"comparison sorted by {COMPARE_COLUMNS[self.sort_column]}", timeout=2)

    def _compare_cursor(self) -> str | None:
        table = self.query_one("#compare-table", DataTable)
        if self.query_one("#results-tabs", TabbedContent).active != "tab-compare" or not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_mark(self) -> None:
        run_id = self._compare_cursor()
        if run_id is None:
            self.app.notify("space marks runs in the Compare tab (c) or the runs list", timeout=4)
            return
        self.app.store.toggle_mark(run_id)  # type: ignore[attr-defined]  (the table and the overlay follow)
        table = self.query_one("#compare-table", DataTable)
        table.move_cursor(row=min(table.cursor_row + 1, table.row_count - 1))

    def action_ensemble(self) -> None:
        offer_ensemble(self.app)

    def action_predict(self) -> None:
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if record is None:
            self.app.notify("choose a finished run first (r opens the runs list)", severity="warning")
            return
        if is_derived(record.metrics):
            self.app.notify(f"{record.info.id} has no network of its own ({derived_from(record.metrics)}); "
                            f"predict with one of its runs", severity="warning")
            return
        if not (record.info.dir / "checkpoints" / "best.pt").exists():
            self.app.notify(f"{record.info.id} has no best checkpoint yet: it has not finished an epoch",
                            severity="warning")
            return
        try:
            kind = str(read_config(record.info.dir).get("dataset", {}).get("kind", ""))
        except GalaxyError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.push_screen(PredictDialog(record.info.id, record.info.dir, kind, self.app.workspace))  # type: ignore[attr-defined]

    def action_curation(self) -> None:
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if record is None or is_derived(record.metrics) or self.app.registry is None:  # type: ignore[attr-defined]
            self.app.notify("choose a finished run with a network of its own first (r opens the runs list)",
                            severity="warning")
            return
        open_curation(self.app, self.app.registry, record.info.id, record.info.dir)  # type: ignore[attr-defined]

    def action_diff(self) -> None:
        """Compare: what changed from the marked run (else the one Results shows) to the row under the cursor."""
        store = self.app.store  # type: ignore[attr-defined]
        table = self.query_one("#compare-table", DataTable)
        base = store.records.get(store.marked[0]) if store.marked else store.browsed_record
        if not table.row_count or base is None:
            self.app.notify("no runs to compare", severity="warning")
            return
        other = store.records.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))
        if other is None or other is base:
            self.app.notify(f"move the cursor to another run than {base.info.id} (or mark one in the runs list)",
                            severity="warning", timeout=6)
            return
        show_config_diff(self.app, (base.info.id, base.info.dir), (other.info.id, other.info.dir))

    def _sort_mistakes(self) -> None:
        orders = mistake_orders(self._has_votes)
        self.mistake_order = orders[(orders.index(self.mistake_order) + 1) % len(orders)] \
            if self.mistake_order in orders else "confidence"
        self.call_later(self._remount_mistakes)

    async def _remount_mistakes(self) -> None:
        await self._mount_mistakes(self.app.store.browsed_record)  # type: ignore[attr-defined]
        self.action_results_tab("tab-mistakes")

    def action_open_mistake(self) -> None:
        focused = self.app.focused
        if isinstance(focused, MistakeCell):
            cells = list(self.query(MistakeCell))
            galaxies = [Galaxy(lambda path=cell.path: PILImage.open(path),
                               "\n".join(filter(None, (cell.caption, cell.details))), str(cell.row.get("id", "")))
                        for cell in cells]
            record = self.app.store.browsed_record  # type: ignore[attr-defined]
            self.app.push_screen(GalaxyView(galaxies, cells.index(focused),
                                            lambda galaxy_id: similar_in_run(self.app, record.info.dir, galaxy_id)))
