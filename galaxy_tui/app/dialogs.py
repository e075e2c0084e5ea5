"""Modal dialogs: confirm, choose one of several, type a value, and the help screen."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from galaxy_tui.app.commands import Command


class ChoiceDialog(ModalScreen[str | None]):
    """A question with one button per answer; Escape cancels. Each answer has its own key, shown on its button."""

    AUTO_FOCUS = "Button"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]], dialog_id: str = "choice"):
        super().__init__(id=dialog_id)
        self.question = question
        self.choices = choices  # (value, label, key)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                for value, label, key in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{value}",
                                 variant="primary" if value == self.choices[0][0] else "default")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id).removeprefix("choice-"))

    def on_key(self, event: events.Key) -> None:
        for value, _label, key in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return


def confirm(question: str, yes: str = "Yes", no: str = "No") -> ChoiceDialog:
    return ChoiceDialog(question, [("yes", yes, "y"), ("no", no, "n")], dialog_id="confirm")


class InputDialog(ModalScreen[str | None]):
    AUTO_FOCUS = "#dialog-input"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, prompt: str, value: str = "", placeholder: str = ""):
        super().__init__(id="input-dialog")
        self.prompt, self.value, self.placeholder = prompt, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt, classes="question")
            yield Input(self.value, placeholder=self.placeholder, id="dialog-input")
            yield Static("Enter to accept, Escape to cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "DataTable"
    BINDINGS = [Binding("escape,question_mark,q", "dismiss(None)", "Close")]

    def __init__(self, title: str, commands: list[Command]):
        super().__init__(id="help")
        self.heading, self.commands = title, commands

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.heading, classes="question")
            table: DataTable = DataTable(show_cursor=False, zebra_stripes=True)
            table.add_columns("key", "command", "what it does")
            for c in self.commands:
                table.add_row(_key_label(c.key), c.name, c.description)
            yield table
            yield Static("Every command is also in the palette (ctrl+p). Escape closes.", classes="hint")


_KEY_NAMES = {"plus": "+", "minus": "-", "question_mark": "?", "left_square_bracket": "[",
              "right_square_bracket": "]", "enter": "Enter"}


def _key_label(key: str) -> str:
    return _KEY_NAMES.get(key, key)
