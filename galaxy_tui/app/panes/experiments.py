"""Experiments pane: list, create, edit and launch, with Resume / Restart / Skip when checkpoints exist."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.dialogs import ChoiceDialog
from galaxy_tui.app.threads import deliver
from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import MODEL_NAMES
from galaxy_tui.registry import PRECISIONS, Experiment, Registry, update_registry
from galaxy_tui.runs import latest_checkpointed_run, launch

COLUMNS = ("name", "dataset", "model", "size", "epochs", "lr", "micro", "batch", "prec", "dev", "thr")


def experiment_row(e: Experiment) -> tuple[str, ...]:
    return (e.name, e.dataset, e.model, str(e.image_size), str(e.epochs), f"{e.lr:g}", str(e.micro_batch),
            str(e.effective_batch), e.precision, str(e.devices), f"{e.labels.threshold:g}")


class ExperimentForm(ModalScreen[str | None]):
    """Create or edit one experiment. Values are validated by the registry itself before anything is saved."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save")]
    AUTO_FOCUS = "Input:enabled, Select"

    def __init__(self, registry: Registry, experiment: Experiment | None):
        super().__init__(id="experiment-form")
        self.registry = registry
        self.original = experiment
        self.start = experiment or Experiment(name="", dataset=next(iter(registry.datasets), ""))

    def compose(self) -> ComposeResult:
        e = self.start
        with VerticalScroll(classes="dialog wide", id="form-body"):
            yield Label("Edit experiment" if self.original else "New experiment", classes="question")
            with Grid(id="form-grid"):
                yield Label("name")
                yield Input(e.name, id="f-name", disabled=self.original is not None, compact=True)
                yield Label("dataset")
                yield Select([(d, d) for d in self.registry.datasets], value=e.dataset or Select.BLANK, id="f-dataset",
                             allow_blank=False, compact=True)
                yield Label("model")
                yield Select([(m, m) for m in MODEL_NAMES], value=e.model, id="f-model", allow_blank=False,
                             compact=True)
                yield Label("threshold")
                yield Input(f"{e.labels.threshold:g}", id="f-threshold", compact=True)
                yield Label("image size")
                yield Input(str(e.image_size), id="f-image_size", compact=True)
                yield Label("epochs")
                yield Input(str(e.epochs), id="f-epochs", compact=True)
                yield Label("learning rate")
                yield Input(f"{e.lr:g}", id="f-lr", compact=True)
                yield Label("micro-batch")
                yield Input(str(e.micro_batch), id="f-micro_batch", placeholder="auto or a number", compact=True)
                yield Label("effective batch")
                yield Input(str(e.effective_batch), id="f-effective_batch", compact=True)
                yield Label("precision")
                yield Select([(p, p) for p in PRECISIONS], value=e.precision, id="f-precision", allow_blank=False,
                             compact=True)
                yield Label("devices")
                yield Input(str(e.devices), id="f-devices", compact=True)
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._shown = self._changes()  # the values as shown: saving writes only those that differ

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def _value(self, key: str) -> str:
        return str(self.query_one(f"#f-{key}", Input).value).strip()

    def _changes(self) -> dict[str, Any]:
        def number(key: str, kind: type) -> Any:
            text = self._value(key)
            try:
                return kind(text)
            except ValueError:
                raise GalaxyError(f"{key.replace('_', ' ')}: {text!r} is not a {kind.__name__}") from None

        micro = self._value("micro_batch")
        return {
            "dataset": self.query_one("#f-dataset", Select).value,
            "model": self.query_one("#f-model", Select).value,
            "image_size": number("image_size", int),
            "epochs": number("epochs", int),
            "micro_batch": micro if micro == "auto" else number("micro_batch", int),
            "effective_batch": number("effective_batch", int),
            "precision": self.query_one("#f-precision", Select).value,
            "devices": number("devices", int),
            "_lr": number("lr", float),
            "_threshold": number("threshold", float),
        }

    def action_save(self) -> None:
        error = self.query_one("#form-error", Static)
        name = self.original.name if self.original else self._value("name")
        try:
            if not name or not name.replace("-", "").replace("_", "").isalnum():
                raise GalaxyError("name: use letters, digits, - and _ (e.g. gz2-resnet18)")
            if self.original is None and name in self.registry.experiments:
                raise GalaxyError(f"name: an experiment called {name!r} already exists")
            changes = self._changes()
            if self.original is not None:  # only what the person changed: hand edits made meanwhile stay
                changes = {k: v for k, v in changes.items() if self._shown.get(k) != v}

            def mutate(raw: dict[str, Any]) -> None:
                table = raw.setdefault("experiments", {}).setdefault(name, {})
                for key, value in changes.items():
                    if key == "_lr":
                        table.setdefault("optimizer", {})["lr"] = value
                    elif key == "_threshold":
                        table.setdefault("labels", {})["threshold"] = value
                    else:
                        table[key] = value

            self.app.registry = update_registry(self.registry.path, mutate)  # type: ignore[attr-defined]
        except GalaxyError as exc:
            error.update(Text(str(exc).split(": ", 1)[-1] if "experiments.toml" in str(exc) else str(exc),
                              style="bold red"))
            self.call_after_refresh(error.scroll_visible)
            return
        self.dismiss(name)


class ExperimentsPane(Widget):
    BINDINGS = bindings_for("experiments")

    def __init__(self) -> None:
        super().__init__(id="experiments-pane")

    def compose(self) -> ComposeResult:
        yield DataTable(id="experiments-table", cursor_type="row", zebra_stripes=True)
        yield Static("l launch · e edit · n new · Enter edit", id="experiments-hint")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.reload()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        registry = self.app.registry  # type: ignore[attr-defined]
        if registry is None:
            self.query_one("#experiments-hint", Static).update(Text(self.app.registry_error or "", style="red"))  # type: ignore[attr-defined]
            return
        for experiment in registry.experiments.values():
            table.add_row(*experiment_row(experiment), key=experiment.name)
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

    def _open_form(self, experiment: Experiment | None) -> None:
        def saved(name: str | None) -> None:
            if name:
                self.reload()
                self.app.notify(f"saved experiment {name}")

        self.app.push_screen(ExperimentForm(self.app.registry, experiment), saved)  # type: ignore[attr-defined]

    def action_edit(self) -> None:
        if self.selected:
            self._open_form(self.app.registry.experiments[self.selected])  # type: ignore[attr-defined]

    def action_new(self) -> None:
        if self.app.registry is not None:  # type: ignore[attr-defined]
            self._open_form(None)

    def action_launch(self) -> None:
        name = self.selected
        if name is None:
            return
        registry = self.app.registry  # type: ignore[attr-defined]
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

    @work(thread=True, exclusive=True, group="launch")
    def start_run(self, name: str, choice: str | None) -> None:
        try:
            run = launch(self.app.registry, name, choice)  # type: ignore[attr-defined]
        except GalaxyError as exc:
            deliver(self.app, self.app.notify, str(exc), title="cannot launch", severity="error", timeout=10)
            return
        deliver(self.app, self.app.run_launched, run.id)  # type: ignore[attr-defined]
