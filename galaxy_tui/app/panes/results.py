"""Results pane: test metrics, the confusion matrix as a heat-map, per-class scores, the mistakes, a comparison."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

from PIL import Image as PILImage
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane
from textual_image.widget import Image as ImageWidget
from textual_plotext import PlotextPlot

from galaxy_tui.analysis.calibration_figures import (
    calibration_line,
    draw_confidence,
    draw_reliability,
    draw_threshold_accuracy,
    draw_threshold_counts,
    per_class_table,
    threshold_table,
)
from galaxy_tui.analysis.comparison import Comparability, comparability
from galaxy_tui.analysis.derived_results import derived_from, is_derived
from galaxy_tui.analysis.fraction_figures import (
    FractionPredictions,
    csv_number,
    draw_residuals,
    draw_scatter,
    headline,
    is_fraction_run,
    question_table,
)
from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.curves import visible
from galaxy_tui.app.ensemble_offer import offer_ensemble
from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.gallery import Galaxy, GalaxyView, vote_line
from galaxy_tui.app.predict_dialog import PredictDialog
from galaxy_tui.app.store import RunRecord
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.thumbs import for_screen, readable_class, size_square, step_focus
from galaxy_tui.app.views import show_config_diff
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_config
from galaxy_tui.run_model import RunModel
from galaxy_tui.scores import score_of_epochs

# A 256-colour-safe ramp from "none" to "all of the row".
HEAT = ("grey11", "grey23", "navy_blue", "dark_blue", "blue3", "blue1", "dodger_blue2", "dodger_blue1",
        "deep_sky_blue1", "turquoise2")
COMPARE_COLUMNS = ("grp", "run", "experiment", "model", "thr", "best val", "test", "minutes", "tags", "note")
DESCENDING_FROM = 5  # figures sort best first; names ascending
GRID_COLUMNS = 4
OVERLAY_RUNS = 6


def heatmap(classes: list[str], matrix: list[list[int]], normalised: bool,
            title: str = "confusion matrix: rows true, columns predicted") -> Table:
    table = Table(title=title + (" (row share)" if normalised else ""), show_lines=False, pad_edge=False)
    table.add_column("true \\ pred", no_wrap=True)
    for name in classes:
        table.add_column(name[:10], justify="right", no_wrap=True)
    for i, (name, row) in enumerate(zip(classes, matrix)):
        total = sum(row) or 1
        cells = []
        for j, n in enumerate(row):
            share = n / total
            label = f"{share:.2f}" if normalised else str(n)
            style = f"{'bold ' if i == j else ''}white on {HEAT[min(len(HEAT) - 1, int(share * len(HEAT)))]}"
            cells.append(Text(f" {label} ", style=style))
        table.add_row(f"{name[:12]} ({sum(row)})", *cells)
    return table


def test_figure(metrics: dict) -> str:
    """The headline test figure: accuracy, or RMSE for a vote-fraction run."""
    if is_fraction_run(metrics):
        return f"rmse {metrics['rmse']:.4f}" if isinstance(metrics.get("rmse"), (int, float)) else "-"
    return f"{metrics['accuracy']:.4f}" if isinstance(metrics.get("accuracy"), (int, float)) else "-"


MISTAKE_ORDERS = {"confidence": "model confidence, most sure first",
                  "class": "true class, the most confident errors of each first",
                  "disagreement": "volunteer disagreement, most split first"}


def mistake_caption(row: dict[str, str]) -> str:
    """Three short lines that each fit a tile (cut with an ellipsis, never wrapped mid-word): the galaxy,
    what it is, what the model said and how sure it was."""
    return f"{row.get('id', '')}\ntrue {readable_class(row['true'])}\n{float(row['confidence']):.2f} " \
           f"{readable_class(row['predicted'])}"


def _number(row: dict[str, str], column: str) -> float:
    return csv_number(row.get(column))


def volunteer_line(row: dict[str, str]) -> str:
    """The vote fractions behind a mistake's true label, for the enlarged view ("" without votes)."""
    agreement = _number(row, "votes_agreement")
    if not math.isfinite(agreement):
        return ""
    fractions = (_number(row, f"votes_{column}") for column in
                 ("smooth", "disk", "edgeon_yes", "spiral", "total_classifications"))
    return vote_line(*fractions) + f"  · agreement {agreement:.2f}"


def residual_caption(row: dict[str, str], answers: list[str]) -> str:
    """A worst-residual tile: the galaxy, its RMSE, its most wrong answer (of those listed) true -> predicted."""
    def miss(answer: str) -> float:
        error = abs(_number(row, f"true_{answer}") - _number(row, f"pred_{answer}"))
        return error if math.isfinite(error) else -1.0

    worst = max(answers, key=miss) if answers else ""
    return f"{row.get('id', '')}\nrmse {_number(row, 'rmse'):.3f}\n{worst} " \
           f"{_number(row, f'true_{worst}'):.2f}→{_number(row, f'pred_{worst}'):.2f}"


def residual_details(row: dict[str, str], answers: list[str]) -> str:
    """Every answer of the listing, true -> predicted, for the enlarged view."""
    return "  ".join(f"{a} {_number(row, f'true_{a}'):.2f}→{_number(row, f'pred_{a}'):.2f}" for a in answers)


def ordered_mistakes(listing: list[dict[str, str]], order: str, classes: list[str]) -> list[dict[str, str]]:
    if order == "disagreement":  # the least agreement first; galaxies without votes last
        return sorted(listing, key=lambda row: agreement if math.isfinite(agreement := _number(row, "votes_agreement"))
                      else 2.0)
    by_confidence = sorted(listing, key=lambda row: -_number(row, "confidence"))
    if order == "class":  # in the run's class order (a class it no longer lists: last)
        return sorted(by_confidence, key=lambda row: classes.index(row["true"]) if row["true"] in classes
                      else len(classes))
    return by_confidence


def mistake_orders(has_votes: bool) -> list[str]:
    return [order for order in MISTAKE_ORDERS if has_votes or order != "disagreement"]


class MistakeCell(Vertical):
    """A tile of the Mistakes tab: a mistake, or a vote-fraction run's galaxy with a large residual."""

    can_focus = True

    def __init__(self, path: Path, row: dict[str, str], caption: str, details: str):
        super().__init__(classes="mistake")
        self.path, self.row, self.caption, self.details = path, row, caption, details

    def compose(self) -> ComposeResult:
        yield ImageWidget(for_screen(PILImage.open(self.path), self.app.grey_galaxies),  # type: ignore[attr-defined]
                          classes="mistake-image")
        yield Static(Text(self.caption, no_wrap=True, overflow="ellipsis"), classes="mistake-caption")


class MistakesGrid(Grid):
    BINDINGS = [Binding("left", "move(-1)", show=False), Binding("right", "move(1)", show=False),
                Binding("up", f"move({-GRID_COLUMNS})", show=False),
                Binding("down", f"move({GRID_COLUMNS})", show=False)]

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_images)

    def fit_images(self) -> None:
        """Pictures grow with the pane: each takes its column's width."""
        columns = max(14, (self.size.width - (GRID_COLUMNS - 1)) // GRID_COLUMNS)
        for image in self.query(".mistake-image"):
            size_square(image, columns, max_rows=24)

    def action_move(self, delta: int) -> None:
        step_focus(list(self.query(MistakeCell)), self.app.focused, delta)


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
                yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="compare-plot")

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        for column in COMPARE_COLUMNS:
            table.add_column(column + "  ", key=column)  # room for the sort marker
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
        m = record.metrics
        self._show_summary(record)
        self._confusion(m)
        self.query_one("#results-per-class", Static).update(question_table(m) if is_fraction_run(m) else
                                                            per_class_table(m))
        self.query_one("#results-thresholds", Static).update(threshold_table(m) if m.get("thresholds") else "")
        self.call_later(self._mount_mistakes, record)
        self._predictions = None
        fractions = is_fraction_run(m)
        self.query_one("#results-tabs", TabbedContent).get_tab("tab-answers").label = \
            "Answers" if fractions else "Calibration"
        if fractions:
            self._load_predictions(record.info.dir / "results" / "predictions.csv")
        else:
            self._show_calibration(m)

    def _show_summary(self, record: RunRecord) -> None:
        summary, m = self.query_one("#results-summary", Static), record.metrics or {}
        if is_fraction_run(m):
            summary.update(Text.assemble((record.info.id, "bold"), "  ", headline(m)))
            return
        if "accuracy" not in m:
            return
        split = m.get("split", "test")
        accuracy = Text(f"{split} accuracy ")
        accuracy.append(f"{m['accuracy']:.4f}", style="bold green")
        summary.update(pack_fields([
            Text(record.info.id, style="bold"), accuracy, Text(f"{split} loss {m['loss']:.4f}"),
            Text(f"macro F1 {m['macro_f1']:.4f}"),
            *([Text(f"with 8-view TTA {m['tta']['accuracy']:.4f}")] if (m.get("tta") or {}).get("accuracy") else []),
            Text(f"val accuracy {m.get('best_val_acc', 0):.4f} ({derived_from(m)})" if is_derived(m)
                 else f"best val {m.get('best_val_acc', 0):.4f} (epoch {m.get('best_epoch')})")],
            max(20, (summary.content_size.width or self.size.width) - 2)))

    def _confusion(self, metrics: dict) -> None:
        widget = self.query_one("#results-confusion", Static)
        if not is_fraction_run(metrics):
            widget.update(heatmap(metrics["classes"], metrics["confusion"], self.normalised))
            return
        derived = metrics.get("derived")
        if not derived:
            widget.update(Text("no derived classification: the chosen questions leave out one the labelling rule "
                               "reads", style="dim"))
            return
        widget.update(heatmap(derived["classes"], derived["confusion"], self.normalised,
                              f"rule at {derived.get('threshold')}: rows volunteers, columns model"))

    async def _mount_mistakes(self, record: RunRecord | None) -> None:
        grid = self.query_one("#mistakes-grid", MistakesGrid)
        await grid.remove_children()
        heading = self.query_one("#mistakes-order", Static)
        heading.update("")
        if record is not None and is_fraction_run(record.metrics):
            await self._mount_residuals(grid, heading, record.info.dir / "results" / "residuals")
            return
        folder = record.info.dir / "results" / "mistakes" if record else None
        if folder is None or not (folder / "mistakes.csv").exists():
            await grid.mount(Label("no mistakes to show"))
            return
        with open(folder / "mistakes.csv", newline="") as handle:
            listing = list(csv.DictReader(handle))
        if not listing:
            split = (record.metrics or {}).get("split", "test")
            await grid.mount(Label(f"no mistakes: every {split} galaxy was classified correctly"))
            return
        self._has_votes = "votes_agreement" in listing[0]
        orders = mistake_orders(self._has_votes)
        if self.mistake_order not in orders:
            self.mistake_order = "confidence"
        following = orders[(orders.index(self.mistake_order) + 1) % len(orders)]
        heading.update(Text.assemble(  # wraps between words at any width (the pane may not be laid out yet)
            (f"{len(listing)} mistakes", "bold"), f" · sorted by {MISTAKE_ORDERS[self.mistake_order]} · ",
            (f"o: by {MISTAKE_ORDERS[following].split(',')[0]}", "dim"),
            ("" if self._has_votes else " (no vote fractions to sort by)", "dim"),
            (" · arrows move · Enter opens", "dim")))
        classes = list((record.metrics or {}).get("classes") or [])
        await grid.mount_all([MistakeCell(folder / row["file"], row, mistake_caption(row), volunteer_line(row))
                              for row in ordered_mistakes(listing, self.mistake_order, classes)])
        grid.fit_images()

    async def _mount_residuals(self, grid: MistakesGrid, heading: Static, folder: Path) -> None:
        if not (folder / "residuals.csv").exists():
            await grid.mount(Label("no residuals to show"))
            return
        with open(folder / "residuals.csv", newline="") as handle:
            listing = list(csv.DictReader(handle))
        answers = [c[len("true_"):] for c in (listing[0] if listing else {}) if c.startswith("true_")]
        heading.update(Text.assemble((f"{len(listing)} galaxies with the largest residuals", "bold"),
                                     " · worst first · ", ("arrows move · Enter opens", "dim")))
        await grid.mount_all([MistakeCell(folder / row["file"], row, residual_caption(row, answers),
                                          residual_details(row, answers)) for row in listing])
        grid.fit_images()

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
        table = self.query_one("#compare-table", DataTable)
        self._group_keys = list(dict.fromkeys(keys.values()))
        self._groups = {run_id: self._group_keys.index(key) + 1 for run_id, key in keys.items()}
        rows = []
        for record in records:
            m = record.metrics
            rows.append((f"G{self._groups[record.info.id]}", ("● " if record.info.id in store.marked else "") +
                         record.info.id, record.info.experiment, m.get("model", ""), f"{m.get('threshold', 0):g}",
                         record.info.best_text,
                         test_figure(m) + (" (val)" if m.get("split") == "validation" else ""),
                         f"{m.get('seconds', 0) / 60:.1f}", " ".join(f"#{t}" for t in record.notes.tags),
                         record.notes.note, record.info.id))
        descending = DESCENDING_FROM <= self.sort_column < COMPARE_COLUMNS.index("tags")
        rows.sort(key=lambda row: row[self.sort_column], reverse=descending)
        rows.sort(key=lambda row: int(row[0][1:]))  # stable: each group together, sorted within
        cursor = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        for *cells, run_id in rows:
            table.add_row(*cells, key=run_id)
        for index, column in enumerate(table.ordered_columns):  # the sorted column says so in its header
            column.label = Text(COMPARE_COLUMNS[index] + (" ▼" if descending else " ▲") * (index == self.sort_column))
        if cursor in keys:
            table.move_cursor(row=table.get_row_index(cursor))
        self._describe_groups()
        self._overlay()

    def _describe_groups(self) -> None:
        """The groups, each kept whole on its line; and why the run under the cursor cannot be compared with
        group 1 (the newest result's)."""
        groups = self.query_one("#compare-groups", Static)
        if len(self._group_keys) < 2:
            groups.update(Text("all runs comparable: " + self._group_keys[0].describe() if self._group_keys else "",
                               style="dim"))
            return
        counts = Counter(self._groups.values())
        fields = [Text("comparable groups:", style="dim")]
        fields += [Text(f"G{n} {key.describe()} ({counts[n]})") for n, key in enumerate(self._group_keys, start=1)]
        text = pack_fields(fields, max(20, (groups.content_size.width or self.size.width) - 1))
        table = self.query_one("#compare-table", DataTable)
        if table.row_count:
            run_id = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
            group = self._groups.get(run_id, 1)
            if group != 1:
                text.append(f"\nG{group} vs G1: ", style="bold yellow")
                text.append(self._group_keys[0].why_not(self._group_keys[group - 1]))
        groups.update(text)

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
        curves = []
        for run_id, folder in folders:
            model = RunModel.of_run(folder)
            score = score_of_epochs(model.epochs)
            curves.append((f"{run_id} ({score.short})", *model.epoch_series("epoch", score.key)))
        deliver(self.app, self._draw_overlay, curves, title)

    def _draw_overlay(self, curves: list[tuple[str, list[float], list[float]]], title: str) -> None:
        widget = self.query_one("#compare-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.title(title)
        plt.xlabel("epoch")
        for run_id, *series in curves:
            epochs, accuracy = visible(*series, None)
            if epochs:
                plt.plot(epochs, accuracy, label=run_id, marker="braille")
        widget.refresh()

    def redraw_galaxies(self) -> None:
        self._shown = (None, -1.0)

    def on_resize(self) -> None:
        record = self.app.store.browsed_record  # type: ignore[attr-defined]
        if record is not None:  # the summary's figures are packed to the width: pack them again
            self.call_after_refresh(self._show_summary, record)

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
        elif tabs.active == "tab-answers" and record is not None and record.metrics \
                and not is_fraction_run(record.metrics):
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
                               "\n".join(filter(None, (cell.caption, cell.details)))) for cell in cells]
            self.app.push_screen(GalaxyView(galaxies, cells.index(focused)))
