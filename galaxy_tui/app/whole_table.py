"""A table whose columns are shown whole or not at all. A DataTable wider than its box cuts the last column at the
edge, so 0.9750 reads `0.` and 3000 reads `30`; here free-text columns narrow first (with an ellipsis), then the
columns that do not fit give way from the right, and a last header `+3→` says how many did (a wider terminal
shows them). The table keeps its data, so it fits again
whenever its width changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.errors import MarkupError
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from galaxy_tui.app.fields import fitting_columns

Cell = str | Text


@dataclass(frozen=True)
class Row:
    key: str
    cells: Sequence[Cell]
    height: int = 1


def cell_width(cell: Cell) -> int:
    """The widest line of a cell as DataTable draws it (a str is read as markup, as DataTable reads it)."""
    if isinstance(cell, str):
        try:
            cell = Text.from_markup(cell)
        except MarkupError:
            cell = Text(cell)
    return max((line.cell_len for line in cell.split("\n")), default=0)


SQUEEZED = 5  # the narrowest a text column gets, ellipsis included, before columns give way


def squeezed_widths(widths: Sequence[int], squeezable: Sequence[bool], room: int, padding: int) -> list[int]:
    """Text columns (tags, notes) give up width, widest first and down to SQUEEZED, before any column goes."""
    widths = list(widths)
    excess = sum(widths) + 2 * padding * len(widths) - room
    while room > 0 and excess > 0:
        candidates = [i for i, width in enumerate(widths) if squeezable[i] and width > SQUEEZED]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        others = max([widths[i] for i in candidates if i != widest] + [SQUEEZED])
        cut = min(excess, widths[widest] - others) or 1
        widths[widest] -= cut
        excess -= cut
    return widths


def _fitted(cell: Cell, width: int) -> Text:
    text = Text(cell) if isinstance(cell, str) else cell.copy()
    text.truncate(width, overflow="ellipsis")
    return text


class WholeTable(DataTable):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._labels: list[Cell] = []
        self._keys: list[str] = []
        self._least: list[int] = []
        self._squeezable: list[bool] = []
        self._rows: list[Row] = []
        self._built: tuple[tuple, int] = ((), -1)  # ((widths, columns shown, labels), data version) drawn
        self._drawn_keys: list[tuple[str, int]] = []  # the rows in the table (key, height), and their cells
        self._drawn: list[list[Cell]] = []
        self._version = 0

    def set_columns(self, labels: Sequence[Cell], keys: Sequence[str] | None = None,
                    least: Sequence[int] | None = None, squeeze: Sequence[str] = ()) -> None:
        """The columns in order of importance (the last give way first); `least`: widths they keep as rows
        arrive; `squeeze`: the keys of text columns that narrow, with an ellipsis, before any column goes."""
        self._labels = list(labels)
        self._keys = list(keys) if keys is not None else [str(label) for label in labels]
        self._least = list(least) if least is not None else [0] * len(self._labels)
        self._squeezable = [key in squeeze for key in self._keys]
        self._changed()

    def set_rows(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        self._changed()

    def relabel(self, labels: Sequence[Cell]) -> None:
        self._labels = list(labels)
        self._changed()

    @property
    def data_rows(self) -> list[Row]:
        return self._rows

    @property
    def hidden_columns(self) -> int:
        return len(self._labels) - self._shown()

    def on_resize(self) -> None:
        self._build()

    def _changed(self) -> None:
        self._version += 1
        self._build()

    def _room(self) -> int:
        return self.scrollable_content_region.width if self.size.width else 0

    def _widths(self) -> list[int]:
        natural = [max([self._least[i], cell_width(label)] + [cell_width(row.cells[i]) for row in self._rows
                                                             if i < len(row.cells)])
                   for i, label in enumerate(self._labels)]
        return squeezed_widths(natural, self._squeezable, self._room(), self.cell_padding)

    def _shown(self) -> int:
        return fitting_columns(self._widths(), self._room(), self.cell_padding)

    def _build(self) -> None:
        widths = self._widths()
        shown = fitting_columns(widths, self._room(), self.cell_padding)
        layout = (tuple(widths), shown, tuple(str(label) for label in self._labels))
        if (layout, self._version) == self._built:
            return
        drawn = [self._cells(row, widths, shown) for row in self._rows]
        if layout == self._built[0] and [(r.key, r.height) for r in self._rows] == self._drawn_keys:
            self._update_in_place(drawn)  # a new figure in a row: no rebuild, so the cursor and a key pressed
        else:                              # meanwhile are not disturbed
            self._rebuild(widths, shown, drawn)
        self._built = (layout, self._version)
        self._drawn_keys, self._drawn = [(r.key, r.height) for r in self._rows], drawn

    def _cells(self, row: Row, widths: Sequence[int], shown: int) -> list[Cell]:
        cells = [_fitted(cell, widths[i]) if self._squeezable[i] else cell for i, cell in enumerate(row.cells[:shown])]
        return cells + ([""] if shown < len(self._labels) else [])

    def _update_in_place(self, drawn: list[list[Cell]]) -> None:
        columns = [column.key for column in self.ordered_columns]
        for row, cells, before in zip(self._rows, drawn, self._drawn):
            for column, cell, old in zip(columns, cells, before):
                if cell != old:
                    self.update_cell(row.key, column, cell)

    def _rebuild(self, widths: Sequence[int], shown: int, drawn: list[list[Cell]]) -> None:
        cursor = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if self.row_count else None
        self.clear(columns=True)
        for i in range(shown):
            label = _fitted(self._labels[i], widths[i]) if self._squeezable[i] else self._labels[i]
            self.add_column(label, key=self._keys[i], width=widths[i])
        if shown < len(self._labels):
            self.add_column(f"+{len(self._labels) - shown}→", key="more-columns")
        for row, cells in zip(self._rows, drawn):
            self.add_row(*cells, key=row.key, height=row.height)
        keys = [row.key for row in self._rows]
        if cursor in keys:  # at once (move_cursor waits for the next refresh after new rows: a key pressed
            self.cursor_coordinate = Coordinate(keys.index(str(cursor)), 0)  # before it would be undone)
