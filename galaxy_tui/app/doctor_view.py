"""The palette's Doctor entry: the last `galaxy-tui doctor` report of this workspace (the app never runs the checks:
they load torch and train), or how to make one."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from galaxy_tui.doctor.report import LAST_REPORT, read_report, report_table


class DoctorView(ModalScreen[None]):
    AUTO_FOCUS = "#doctor-body"
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, workspace: Path):
        super().__init__(id="doctor-view")
        self.path = workspace / LAST_REPORT

    def compose(self) -> ComposeResult:
        report = read_report(self.path)
        with VerticalScroll(classes="dialog wide", id="doctor-body"):
            yield Label("Doctor: this box checked as training will use it", classes="question")
            if report is None:
                yield Static(f"No report yet ({self.path} is missing). In a shell on this box: galaxy-tui doctor "
                             f"(about 3 minutes; --quick about 1), then open this again.")
            else:
                yield Static(report_table(report))
                yield Static(f"{self.path}; galaxy-tui doctor checks again", classes="hint")
            yield Static("Arrows scroll · Escape closes", classes="hint")
