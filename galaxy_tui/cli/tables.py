"""Tables for the terminal whose figures are never cut: every cell whole, and the columns that do not fit the
terminal's width left out from the right, a last header `+3→` saying how many (a wider terminal shows them)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table

from galaxy_tui.app.fields import fitting_columns


def whole_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> Table:
    widths = [max([len(column), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]
    # each column: its cells, a space of padding either side, and the box's one-space divider
    shown = max(1, fitting_columns([cells + 1 for cells in widths], width, padding=1))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for column in columns[:shown]:
        table.add_column(column, no_wrap=True)
    hidden = len(columns) - shown
    if hidden:
        table.add_column(f"+{hidden}→", no_wrap=True)
    for row in rows:
        table.add_row(*row[:shown], *([""] if hidden else []))
    return table
