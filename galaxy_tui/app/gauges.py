"""Gauges: rows of label, value and history (Textual's Sparkline), updated in place.

The rows are rebuilt only when which rows exist changes (a GPU appears, the run changes); otherwise each
refresh updates the values and the sparklines' data, so a repaint touches only what moved."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.containers import Grid
from textual.widgets import Sparkline, Static


@dataclass(frozen=True)
class GaugeRow:
    key: str                      # stable identity of the row, e.g. "cuda:0 power"
    label: Text | str
    value: Text | str
    history: list[float] | None   # None: no sparkline on this row


class GaugeGrid(Grid):
    DEFAULT_CSS = """
    GaugeGrid { grid-size: 3; grid-columns: 7 20 1fr; grid-rows: 1; height: auto; }
    GaugeGrid Static { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    GaugeGrid Sparkline { height: 1; }
    """

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._keys: list[str] = []
        self._rows: list[GaugeRow] = []
        self._cells: list[Static | Sparkline] = []  # held here: a refresh may come before they are mounted

    def show(self, rows: list[GaugeRow]) -> None:
        if rows == self._rows:
            return  # nothing moved: touch nothing, so nothing repaints
        keys = [row.key for row in rows]
        if keys != self._keys:
            self._keys = keys
            self.remove_children()
            self._cells = []
            for row in rows:
                self._cells += [Static(row.label), Static(row.value),
                                Sparkline(row.history or [], summary_function=max) if row.history is not None
                                else Static("")]
            self.mount_all(self._cells)
            self._rows = rows
            return
        cells = self._cells
        for i, row in enumerate(rows):
            if i < len(self._rows) and row == self._rows[i]:
                continue
            label, value, history = cells[3 * i: 3 * i + 3]
            label.update(row.label)  # type: ignore[attr-defined]
            value.update(row.value)  # type: ignore[attr-defined]
            if isinstance(history, Sparkline) and row.history is not None and list(history.data or []) != row.history:
                history.data = row.history
        self._rows = rows
