"""The experiment form: every key an experiment has, each checked by the registry's own rules; Save shows
every problem at once, each under its field, and writes nothing until all are fixed."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import ENCODERS, MODEL_NAMES
from galaxy_tui.registry import (
    LOSSES,
    NAME,
    OPTIMIZERS,
    PRECISIONS,
    SAMPLERS,
    SCHEDULERS,
    TASKS,
    Experiment,
    FieldError,
    Registry,
    parse_registry,
    update_registry,
)

BOOL = (("yes", "yes"), ("no", "no"))  # Select takes a False value for "nothing chosen": strings, then bool


@dataclass(frozen=True)
class FormField:
    key: str            # the key in the experiment's table, dotted below it: "optimizer.lr"
    label: str
    kind: str           # int, optional-int, float, choice, bool, split, micro, names, path, finetune
    choices: tuple[str, ...] = ()
    wide: bool = False  # the control takes the rest of the row: its values are too long for half of it
    hint: str = ""      # said under the form while the field has the focus
    placeholder: str = ""  # shown in an empty input: a few words, whole at any width

    @property
    def widget_id(self) -> str:
        return "f-" + self.key.replace(".", "-")


KIND_HELP = {"int": "a whole number", "float": "a number", "bool": "yes or no",
             "split": "three shares of the galaxies, e.g. 0.8, 0.1, 0.1",
             "micro": "auto (the probe measures the largest that fits) or a whole number"}

FIELDS: tuple[FormField, ...] = (
    FormField("dataset", "dataset", "choice", wide=True),  # names made from file names can be long
    FormField("task", "task", "choice", TASKS, wide=True),
    FormField("loss", "loss", "choice", tuple(dict.fromkeys(loss for losses in LOSSES.values() for loss in losses)),
              wide=True),
    FormField("questions", "questions", "names", wide=True, placeholder="every question",
              hint="the Galaxy Zoo questions to learn, comma-separated; blank: every question (vote fractions)"),
    FormField("model", "model", "choice", (*MODEL_NAMES, *ENCODERS), wide=True),
    FormField("weights", "weights file", "path", wide=True, placeholder="none",
              hint="a timm or Zoobot encoder's weights: a .safetensors or .pt file on this machine; blank: none"),
    FormField("finetune", "finetune recipe", "finetune", wide=True, placeholder="none: all layers train",
              hint="e.g. 1, 2, 0.75: epochs training the head alone, then blocks unfrozen per epoch, and the "
                   "learning-rate decay per block down; blank: every layer trains from the start"),
    FormField("pretrained", "pretrained", "bool"),
    FormField("image_size", "image size", "int"),
    FormField("epochs", "epochs", "int"),
    FormField("labels.threshold", "threshold", "float"),
    FormField("labels.min_classifications", "min votes", "int"),
    FormField("labels.max_artifact", "max artifact", "float"),
    FormField("split", "split train,val,test", "split"),
    FormField("sampler", "sampler", "choice", SAMPLERS),
    FormField("augment", "augmentation", "bool"),
    FormField("optimizer.name", "optimizer", "choice", OPTIMIZERS),
    FormField("optimizer.lr", "learning rate", "float"),
    FormField("optimizer.weight_decay", "weight decay", "float"),
    FormField("optimizer.momentum", "momentum (sgd)", "float"),
    FormField("scheduler", "scheduler", "choice", SCHEDULERS),
    FormField("label_smoothing", "label smoothing", "float"),
    FormField("grad_clip", "gradient clip", "float"),
    FormField("early_stopping", "early stop after", "int"),
    FormField("precision", "precision", "choice", PRECISIONS),
    FormField("micro_batch", "micro-batch", "micro"),
    FormField("effective_batch", "effective batch", "int"),
    FormField("devices", "GPUs", "int"),
    FormField("channels_last", "channels last", "bool"),
    FormField("tf32", "TF32", "bool"),
    FormField("vram_margin", "VRAM margin", "float"),
    FormField("seed", "seed", "int"),
    FormField("checkpoint_minutes", "checkpoint every min", "float"),
    FormField("mistakes", "mistakes kept", "int"),
    FormField("views", "views pooled", "optional-int", placeholder="1",
              hint="1: each galaxy as it is; 4: its quarter turns, 8: and their mirror images, 16: and all turned "
                   "by 45 degrees — one shared network, features averaged before the head (rotation-invariant)"),
    FormField("tta", "8-view TTA at eval", "bool"),
    FormField("max_steps_per_epoch", "max steps per epoch", "int"),
)


def current_value(experiment: Experiment, field: FormField) -> Any:
    """The experiment's value for a form field (its table() holds every key under the form's names; None: an
    optional key it leaves out, such as a finetune recipe it does not have)."""
    value: Any = experiment.table()
    for part in field.key.split("."):
        if part not in value:
            return None
        value = value[part]
    return value


DEFAULTS = {field.key: current_value(Experiment(name="", dataset=""), field) for field in FIELDS}


def shown(field: FormField, value: Any) -> str:
    if value is None:
        return ""
    if field.kind == "finetune":
        return f"{value['frozen_epochs']}, {value['unfreeze_blocks']}, {value['lr_decay']:g}"
    if field.kind == "split":
        return ", ".join(f"{v:g}" for v in value)
    if field.kind == "names":
        return ", ".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse(field: FormField, text: str) -> Any:
    """The typed value of what was typed; GalaxyError saying what is expected."""
    def number(kind: Callable[[str], Any], what: str, piece: str) -> Any:
        try:
            value = kind(piece.strip())
        except ValueError:
            raise GalaxyError(f"{piece.strip()!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise GalaxyError(f"{piece.strip()!r} is not a finite number")
        return value

    if field.kind == "int":
        return number(int, "a whole number", text)
    if field.kind == "optional-int":
        return number(int, "a whole number", text) if text.strip() else None
    if field.kind == "float":
        return number(float, "a number (e.g. 3e-4)", text)
    if field.kind == "micro":
        return "auto" if text.strip() == "auto" else number(int, '"auto" or a whole number', text)
    if field.kind == "split":
        parts = text.replace(";", ",").split(",")
        if len(parts) != 3:
            raise GalaxyError(f"{text.strip()!r}: give three fractions, train, val, test (e.g. 0.8, 0.1, 0.1)")
        return [number(float, "a number", part) for part in parts]
    if field.kind == "names":
        return [part.strip() for part in text.split(",") if part.strip()]
    if field.kind == "path":
        return text.strip() or None
    if field.kind == "finetune":
        return _finetune(text, number)
    return text


def _finetune(text: str, number: Callable[[Callable[[str], Any], str, str], Any]) -> dict[str, Any] | None:
    """"1, 2, 0.75" (head-only epochs, blocks to unfreeze or "all", LR decay; the decay may be left out)."""
    parts = [part.strip() for part in text.replace(";", ",").split(",")]
    if parts == [""]:
        return None
    if len(parts) not in (2, 3):
        raise GalaxyError(f"{text.strip()!r}: give head-only epochs, blocks to unfreeze (or all) and optionally "
                          f"the LR decay, e.g. 1, 2, 0.75; leave it empty to train every weight")
    blocks = "all" if parts[1] == "all" else number(int, 'a whole number or "all"', parts[1])
    decay = number(float, "a number", parts[2]) if len(parts) == 3 else 0.75
    return {"frozen_epochs": number(int, "a whole number", parts[0]), "unfreeze_blocks": blocks, "lr_decay": decay}


def set_key(table: Any, key: str, value: Any) -> None:
    """Set a dotted key; None removes it (an optional key left empty)."""
    *parents, last = key.split(".")
    for part in parents:
        table = table.setdefault(part, {})
    if value is None:
        table.pop(last, None)
    else:
        table[last] = value


def form_key(error: FieldError, experiment: str) -> str | None:
    """The form's key for a registry error about `experiment` (None: elsewhere in the file)."""
    prefix = f"experiments.{experiment}"
    if error.table != prefix and not error.table.startswith(prefix + "."):
        return None
    below = error.table[len(prefix) + 1:]
    return f"{below}.{error.key}" if below else error.key


def problems(registry: Registry, name: str, changes: dict[str, Any]) -> dict[str, str]:
    """Every field whose new value the registry refuses, with why (checked together with the file as it
    is, one refused value set aside at a time, so each problem is found); "" keys a problem elsewhere."""
    found: dict[str, str] = {}
    pending = dict(changes)
    while True:
        raw = copy.deepcopy(registry.raw)
        table = raw.setdefault("experiments", {}).setdefault(name, {})
        for key, value in pending.items():
            set_key(table, key, value)
        try:
            parse_registry(registry.path, raw)
            return found
        except FieldError as exc:
            key = form_key(exc, name)
            if key is not None and key not in pending and key.split(".")[0] in pending:
                key = key.split(".")[0]  # a key inside a table the form edits as one field (finetune)
            if key not in pending:
                found[""] = str(exc)
                return found
            found[key] = exc.problem
            del pending[key]
        except GalaxyError as exc:
            found[""] = str(exc)
            return found


class ExperimentForm(ModalScreen[str | None]):
    """Create, edit or clone one experiment."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save")]
    AUTO_FOCUS = "Input:enabled, Select"

    def __init__(self, registry: Registry, experiment: Experiment | None, clone: bool = False):
        super().__init__(id="experiment-form")
        self.registry = registry
        self.original = None if clone else experiment
        self.start = experiment or Experiment(name="", dataset=next(iter(registry.datasets), ""))
        self.start_name = f"{experiment.name}-copy" if clone and experiment else self.start.name
        self.heading = "Clone experiment" if clone else "Edit experiment" if experiment else "New experiment"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="form-box"):  # the fields scroll; the buttons stay in sight
            yield Label(self.heading, classes="question")
            with VerticalScroll(id="form-body"), Grid(id="form-grid"):
                yield Label("name")
                with Vertical(classes="form-cell wide-cell"):
                    yield Input(self.start_name, id="f-name", disabled=self.original is not None, compact=True)
                    yield Static("", id="error-name", classes="field-error")
                for field in FIELDS:
                    yield Label(field.label)
                    with Vertical(classes="form-cell wide-cell" if field.wide else "form-cell"):
                        yield self._control(field)
                        yield Static("", id=f"error-{field.widget_id}", classes="field-error")
            yield Static("", id="form-help")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _control(self, field: FormField) -> Input | Select:
        value = current_value(self.start, field)
        if field.kind == "bool":
            return Select(BOOL, value="yes" if value else "no", id=field.widget_id, allow_blank=False, compact=True)
        if field.kind == "choice":
            choices = tuple(self.registry.datasets) if field.key == "dataset" else field.choices
            options = [(f"{c} · {ENCODERS[c]}" if c in ENCODERS else c, c) for c in choices]
            if value and value not in choices:  # e.g. any timm:NAME typed into experiments.toml
                options.append((value, value))
                choices = (*choices, value)
            return Select(options, value=value if value in choices else Select.BLANK,
                          id=field.widget_id, allow_blank=not choices or value not in choices, compact=True)
        return Input(shown(field, value), id=field.widget_id, placeholder=field.placeholder, compact=True)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Under the fields: the focused one's key in experiments.toml, and what it takes."""
        field = next((f for f in FIELDS if f.widget_id == event.widget.id), None)
        if field is None:
            self.query_one("#form-help", Static).update("")
            return
        what = field.hint or KIND_HELP.get(field.kind, "") or ("one of " + ", ".join(field.choices[:8])
                                                              if field.choices else "")
        self.query_one("#form-help", Static).update(Text.assemble((field.key, "bold"), " in experiments.toml",
                                                                  (f" · {what}" if what else "", "dim")))

    def on_mount(self) -> None:
        self.query(".field-error").set(display=False)
        self._shown = {field.key: current_value(self.start, field) for field in FIELDS}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def _values(self) -> tuple[dict[str, Any], dict[str, str]]:
        values, errors = {}, {}
        for field in FIELDS:
            control = self.query_one(f"#{field.widget_id}")
            if isinstance(control, Select):
                if control.value is Select.BLANK:
                    errors[field.key] = "choose one"
                else:
                    values[field.key] = control.value == "yes" if field.kind == "bool" else control.value
                continue
            try:
                values[field.key] = _parse(field, str(control.value))
            except GalaxyError as exc:
                errors[field.key] = str(exc)
        return values, errors

    def _name_problem(self, name: str) -> str | None:
        if self.original is not None:
            return None
        if not NAME.fullmatch(name) or name in (".", ".."):
            return "use letters, digits, '.', '_' and '-' (it names run folders), e.g. gz2-resnet18"
        if name in self.registry.experiments:
            return f"an experiment called {name!r} already exists"
        return None

    def action_save(self) -> None:
        name = self.original.name if self.original else str(self.query_one("#f-name", Input).value).strip()
        values, errors = self._values()
        # an edit writes only what the person changed, so hand edits made meanwhile stay; a new experiment
        # only what differs from the defaults (and its dataset), so its table stays short
        base = self._shown if self.original is not None else {**DEFAULTS, "dataset": None}
        changes = {k: v for k, v in values.items() if base.get(k) != v}
        name_problem = self._name_problem(name)
        if name_problem:
            errors["name"] = name_problem
        elif not errors:
            errors = problems(self.registry, name, changes)
        self._show_errors(errors)
        if errors:
            return
        try:
            def mutate(raw: dict[str, Any]) -> None:
                table = raw.setdefault("experiments", {}).setdefault(name, {})
                for key, value in changes.items():
                    set_key(table, key, value)

            self.app.registry = update_registry(self.registry.path, mutate)  # type: ignore[attr-defined]
        except GalaxyError as exc:  # the file changed meanwhile in a way that no longer validates
            self._show_errors({"": str(exc)})
            return
        self.dismiss(name)

    def _show_errors(self, errors: dict[str, str]) -> None:
        first = None
        for field_id, key in [("name", "name")] + [(f.widget_id, f.key) for f in FIELDS]:
            message = self.query_one(f"#error-{field_id}", Static)
            message.display = key in errors
            message.update(Text(errors.get(key, ""), style="bold red"))
            if key in errors and first is None:
                first = message
        summary = self.query_one("#form-error", Static)
        count = len([k for k in errors if k])
        lines = ([f"{count} value(s) to fix, each said under its field; nothing was saved."] if count else []) + \
            ([errors[""]] if "" in errors else [])
        summary.update(Text("\n".join(lines), style="bold red"))
        if first is not None or lines:
            self.call_after_refresh((first or summary).scroll_visible)
