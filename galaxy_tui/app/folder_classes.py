"""Adding an image folder: which class folders to leave out and which to merge into one class (GZ1's
two spiral folders into "spiral", its "don't know" left out), proposed from the names, decided by the
person before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from galaxy_tui.app.dialogs import InputDialog
from galaxy_tui.data.folder_names import class_name_of

_UNSURE = re.compile(r"don'?t[_ -]?know|unknown|unsure|uncertain|other", re.IGNORECASE)
_CLASS_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,40}")


@dataclass
class FolderPlan:
    """What becomes of each class folder."""
    folders: dict[str, int]                               # folder -> images in it
    classes: dict[str, str] = field(default_factory=dict)  # folder -> its class
    excluded: set[str] = field(default_factory=set)

    @classmethod
    def proposed(cls, folders: dict[str, int]) -> FolderPlan:
        """Unsure answers left out; folders whose names share a first word ("spiral_clockwise",
        "spiral_anticlockwise") merged under it."""
        plan = cls(folders, {f: class_name_of(f) for f in folders})
        plan.excluded = {f for f in folders if _UNSURE.search(f)}
        first_words: dict[str, list[str]] = {}
        for folder in folders:
            if folder not in plan.excluded:
                first_words.setdefault(re.split(r"[_\- ]", plan.classes[folder])[0], []).append(folder)
        for word, members in first_words.items():
            if len(members) > 1 and word:
                for folder in members:
                    plan.classes[folder] = word
        return plan

    def table_options(self) -> dict[str, object]:
        """The image-folder table's `exclude` and `merge` keys for this plan (only what differs from the
        folders' own names)."""
        options: dict[str, object] = {}
        if self.excluded:
            options["exclude"] = sorted(self.excluded)
        merge: dict[str, list[str]] = {}
        for folder, name in self.classes.items():
            if folder not in self.excluded:
                merge.setdefault(name, []).append(folder)
        merge = {name: members for name, members in merge.items()
                 if len(members) > 1 or class_name_of(members[0]) != name}
        if merge:
            options["merge"] = merge
        return options


class FolderClassesDialog(ModalScreen[FolderPlan | None]):
    AUTO_FOCUS = "#folder-table"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("space,x", "toggle", "Leave out / keep"),
                Binding("m", "rename", "Class name (same name merges)"), Binding("ctrl+s", "accept", "Add")]

    def __init__(self, path: str, plan: FolderPlan):
        super().__init__(id="folder-classes")
        self.path, self.plan = path, plan

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Classes of {self.path}", classes="question")
            yield DataTable(id="folder-table", cursor_type="row")
            yield Static("", id="folder-summary")
            yield Static("space leaves a folder out or keeps it · m names its class (the same name merges "
                         "folders) · Enter adds the dataset · Escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("folder", "images", "class")
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for folder, count in self.plan.folders.items():
            left_out = folder in self.plan.excluded
            table.add_row(folder, str(count), Text("left out", style="dim") if left_out else
                          Text(self.plan.classes[folder], style="bold"), key=folder)
        table.move_cursor(row=row)
        kept = {self.plan.classes[f] for f in self.plan.folders if f not in self.plan.excluded}
        self.query_one("#folder-summary", Static).update(
            f"{len(kept)} classes from {len(self.plan.folders) - len(self.plan.excluded)} folders")

    @property
    def _folder(self) -> str:
        table = self.query_one(DataTable)
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_toggle(self) -> None:
        self.plan.excluded ^= {self._folder}
        self._fill()

    def action_rename(self) -> None:
        folder = self._folder

        def typed(name: str | None) -> None:
            if name is None:
                return
            if not _CLASS_NAME.fullmatch(name.strip()):
                self.app.notify(f"class name {name!r}: use letters, digits, . _ + - (e.g. spiral)",
                                severity="error")
                return
            self.plan.classes[folder] = name.strip()
            self.plan.excluded.discard(folder)
            self._fill()

        self.app.push_screen(InputDialog(f"Class of the images in {folder} (give two folders the same name to "
                                         f"merge them):", self.plan.classes[folder]), typed)

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_accept()  # Enter

    def action_accept(self) -> None:
        if len({self.plan.classes[f] for f in self.plan.folders if f not in self.plan.excluded}) < 2:
            self.app.notify("keep at least two classes", severity="error")
            return
        self.dismiss(self.plan)
