"""Experiments pane: list, create, edit and launch (Resume / Restart / Skip when checkpoints exist; Watch / Stop /
New run while the experiment runs)."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static

from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.dialogs import ChoiceDialog, confirm
from galaxy_tui.app.experiment_form import ExperimentForm
from galaxy_tui.app.recipe_dialog import RecipeDialog
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.errors import GalaxyError
from galaxy_tui.recipes.catalogue import recipe
from galaxy_tui.recipes.writing import write_recipe
from galaxy_tui.registry import Experiment
from galaxy_tui.runs import RunInfo, find_runs, latest_checkpointed_run, launch, newest_live_run, stop_run

COLUMNS = ("name", "dataset", "model", "size", "epochs", "lr", "micro", "batch", "prec", "dev", "thr")


def experiment_row(e: Experiment) -> tuple[str, ...]:
    return (e.name, e.dataset, e.model, str(e.image_size), str(e.epochs), f"{e.lr:g}", str(e.micro_batch),
            str(e.effective_batch), e.precision, str(e.devices), f"{e.labels.threshold:g}")


class ExperimentsPane(Widget):
    BINDINGS = bindings_for("experiments")

    def __init__(self) -> None:
        super().__init__(id="experiments-pane")

    def compose(self) -> ComposeResult:
        yield WholeTable(id="experiments-table", cursor_type="row", zebra_stripes=True)
        yield Static("l launch · e edit · n new · c clone · Delete deletes · Enter edit", id="experiments-hint")

    def on_mount(self) -> None:
        if not self.query(WholeTable):
            return  # the app is closing while the pane, built after the first paint, was still being mounted
        self.query_one(WholeTable).set_columns(COLUMNS)
        self.reload()

    def reload(self) -> None:
        table = self.query_one(WholeTable)
        cursor = table.cursor_row
        registry = self.app.registry  # type: ignore[attr-defined]
        table.set_rows([Row(e.name, experiment_row(e)) for e in registry.experiments.values()] if registry else [])
        if registry is None:
            self.query_one("#experiments-hint", Static).update(Text(self.app.registry_error or "", style="red"))  # type: ignore[attr-defined]
            return
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def _open_form(self, experiment: Experiment | None, clone: bool = False) -> None:
        def saved(name: str | None) -> None:
            if name:
                self.reload()
                self.app.notify(f"saved experiment {name}")

        self.app.push_screen(ExperimentForm(self.app.registry, experiment, clone), saved)  # type: ignore[attr-defined]

    def action_edit(self) -> None:
        if self.selected:
            self._open_form(self.app.registry.experiments[self.selected])  # type: ignore[attr-defined]

    def action_new(self) -> None:
        if self.app.registry is None:  # type: ignore[attr-defined]
            return

        def chosen(answer: str | None) -> None:
            if answer == "blank":
                self._open_form(None)
            elif answer == "recipe":
                self.app.push_screen(RecipeDialog(), self._write_recipe)
        self.app.push_screen(ChoiceDialog("A new experiment: a blank form, or the experiments of a recipe that "
                                          "reproduces a known result?",
                                          [("blank", "Blank form", "b"), ("recipe", "From a recipe", "r"),
                                           ("cancel", "Cancel", "c")], dialog_id="new-choice"), chosen)

    def _write_recipe(self, name: str | None) -> None:
        if name is None:
            return
        try:
            written = write_recipe(self.app.registry.path, recipe(name))  # type: ignore[attr-defined]
        except GalaxyError as exc:
            self.app.notify(str(exc), severity="error", timeout=12)
            return
        self.app.registry = written.registry  # type: ignore[attr-defined]
        self.reload()
        table = self.query_one(WholeTable)
        table.move_cursor(row=table.get_row_index(written.experiments[0]))
        dataset = (f"; dataset {written.dataset} added: its paths point into data/ (where to get the files is in "
                   f"the comment above it in experiments.toml)" if written.dataset_added
                   else f"; it uses your dataset {written.dataset}")
        self.app.notify(f"recipe {name}: wrote {', '.join(written.experiments)}{dataset}", timeout=12)

    def action_clone(self) -> None:
        if self.selected:
            self._open_form(self.app.registry.experiments[self.selected], clone=True)  # type: ignore[attr-defined]

    def action_delete(self) -> None:
        name = self.selected
        if name is None:
            return
        registry = self.app.registry  # type: ignore[attr-defined]
        runs = [run for run in find_runs(registry) if run.experiment == name]
        live = [run.id for run in runs if run.is_live]
        if live:
            self.app.notify(f"{name} has live runs ({', '.join(live)}): stop them first", severity="warning",
                            timeout=8)
            return

        def answered(answer: str | None) -> None:
            if answer == "yes" and self.app.edit_registry(  # type: ignore[attr-defined]
                    lambda raw: raw.get("experiments", {}).pop(name, None)):
                self.reload()
                self.app.notify(f"deleted experiment {name}")

        kept = f" Its {len(runs)} run folder(s) stay in runs/ (delete runs from the runs list)." if runs else ""
        self.app.push_screen(confirm(f"Delete experiment {name} from experiments.toml?{kept}", "Delete", "Keep"),
                             answered)

    def action_launch(self) -> None:
        name = self.selected
        if name is None:
            return
        registry = self.app.registry  # type: ignore[attr-defined]
        store = self.app.store  # type: ignore[attr-defined]
        live = newest_live_run((record.info for record in store.records.values()), name)
        if live is not None:
            self._offer_live(name, live)
            return
        previous = latest_checkpointed_run(registry, name)
        if previous is None:
            self.start_run(name, None)
            return

        def chosen(choice: str | None) -> None:
            if choice and choice != "cancel":
                self.start_run(name, choice)

        self.app.push_screen(ChoiceDialog(
            f"{name} already has checkpoints (run {previous.id}, {previous.state}, epoch {previous.epoch}/"
            f"{previous.epochs}). What now?",
            [("resume", "Resume", "r"), ("restart", "Restart", "t"), ("skip", "Skip: evaluate best", "s"),
             ("cancel", "Cancel", "c")],
            dialog_id="launch-choice"), chosen)

    def _offer_live(self, name: str, live: RunInfo) -> None:
        """A live run cannot be resumed or evaluated (it is running): the choices that make sense now."""
        def chosen(choice: str | None) -> None:
            if choice == "watch":
                self.app.pin_run(live.id)  # type: ignore[attr-defined]
                self.app.action_show_pane("monitor")  # type: ignore[attr-defined]
            elif choice == "stop":
                try:
                    stop_run(self.app.registry, live.id)  # type: ignore[attr-defined]
                except GalaxyError as exc:
                    self.app.notify(str(exc), severity="error")
                    return
                self.app.notify(f"stopping {live.id}; it checkpoints, and l then offers Resume")
            elif choice == "restart":
                self.start_run(name, "restart")

        self.app.push_screen(ChoiceDialog(
            f"{name} is {live.state} now (run {live.id}, epoch {live.epoch}/{live.epochs}). Watch it, stop it "
            f"(it checkpoints; launch again to resume it), or start a new run beside it?",
            [("watch", "Watch", "w"), ("stop", "Stop it", "s"), ("restart", "New run", "n"), ("cancel", "Cancel", "c")],
            dialog_id="launch-choice"), chosen)

    @work(thread=True, exclusive=True, group="launch")
    def start_run(self, name: str, choice: str | None) -> None:
        try:
            run = launch(self.app.registry, name, choice)  # type: ignore[attr-defined]
        except GalaxyError as exc:
            deliver(self.app, self.app.notify, str(exc), title="cannot launch", severity="error", timeout=10)
            return
        deliver(self.app, self.app.run_launched, run.id)  # type: ignore[attr-defined]
