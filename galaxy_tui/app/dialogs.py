"""Modal dialogs: confirm, choose one of several, type a value, and the help screen."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from galaxy_tui.app.commands import Command, key_label
from galaxy_tui.app.path_input import PathInput

DIALOG_WIDTH = 76  # .dialog in galaxy.tcss
DIALOG_FRAME = 6   # its border and padding, both sides


class ChoiceDialog(ModalScreen[str | None]):
    """A question with one button per answer; Escape cancels. Each answer has its own key, shown on its button."""

    AUTO_FOCUS = "Button"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]], dialog_id: str = "choice"):
        super().__init__(id=dialog_id)
        self.question = question
        self.choices = choices  # (value, label, key)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.question, classes="question")
            for number, row in enumerate(self._rows()):
                with Horizontal(classes="buttons more" if number else "buttons"):
                    for index in row:
                        _value, label, key = self.choices[index]
                        yield Button(f"{label} ({key})", id=f"choice-{index}", compact=True,
                                     variant="primary" if index == 0 else "default")

    def _rows(self) -> list[list[int]]:
        """The answers (by position) in rows that fit the dialog (76 columns, or 96% of a narrower screen, less its
        border and padding): a button takes its text, its key, its padding and a column between."""
        room = min(DIALOG_WIDTH, int(self.app.size.width * 0.96)) - DIALOG_FRAME
        rows: list[list[int]] = [[]]
        used = 0
        for index, (_value, label, key) in enumerate(self.choices):
            width = len(f"{label} ({key})") + 3
            if rows[-1] and used + width > room:
                rows.append([])
                used = 0
            rows[-1].append(index)
            used += width
        return rows

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.choices[int(str(event.button.id).removeprefix("choice-"))][0])

    def on_key(self, event: events.Key) -> None:
        for value, _label, key in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return


def confirm(question: str, yes: str = "Yes", no: str = "No") -> ChoiceDialog:
    return ChoiceDialog(question, [("yes", yes, "y"), ("no", no, "n")], dialog_id="confirm")


class InputDialog(ModalScreen[str | None]):
    """One value typed; with `paths_from`, a path that Tab completes from that folder."""

    AUTO_FOCUS = "#dialog-input"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, prompt: str, value: str = "", placeholder: str = "", paths_from: Path | None = None):
        super().__init__(id="input-dialog")
        self.prompt, self.value, self.placeholder, self.paths_from = prompt, value, placeholder, paths_from

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.prompt, classes="question")
            if self.paths_from is not None:
                yield PathInput(self.paths_from, value=self.value, placeholder=self.placeholder, id="dialog-input")
            else:
                yield Input(self.value, placeholder=self.placeholder, id="dialog-input")
            yield Static("", id="dialog-candidates", classes="hint")
            hint = "Tab completes, " if self.paths_from is not None else ""
            yield Static(f"{hint}Enter to accept, Escape to cancel", classes="hint")

    def on_path_input_candidates(self, event: PathInput.Candidates) -> None:
        self.query_one("#dialog-candidates", Static).update("  ".join(event.names[:40]) +
                                                            (f"  … {len(event.names) - 40} more"
                                                             if len(event.names) > 40 else ""))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class HelpScreen(ModalScreen[None]):
    """Keys and commands; descriptions wrap (never cut), the list scrolls with the arrows."""

    AUTO_FOCUS = "#help-body"
    BINDINGS = [Binding("escape,question_mark,q", "dismiss(None)", "Close")]

    def __init__(self, title: str, commands: list[Command]):
        super().__init__(id="help")
        self.heading, self.commands = title, commands

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True, header_style="bold")
        table.add_column("key", no_wrap=True)
        table.add_column("command", no_wrap=True)
        table.add_column("what it does", ratio=1)
        for c in self.commands:
            table.add_row(key_label(c.key), c.name, c.description)
        with VerticalScroll(classes="dialog wide", id="help-body"):
            yield Label(self.heading, classes="question")
            yield Static(table)
            yield Static("Every command of every pane is in the palette (ctrl+p). Escape closes.", classes="hint")
