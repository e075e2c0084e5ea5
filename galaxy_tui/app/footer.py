"""Textual's footer, holding only whole keys: where a pane's keys do not all fit, the last ones give way."""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Footer

COMPACT_BELOW = 120  # columns: below, the keys drop their padding to make room
KEPT_ACTION = "app.help"  # the door to every key: never the one to give way


class FittingFooter(Footer):
    """Every key stays in `?` and the palette, so a key that does not fit is left out whole rather than cut
    mid-word at the edge, and `? Help` is always there to find it."""

    DEFAULT_CSS = """
    FittingFooter.-compact FooterLabel {
        margin: 0 1 0 0;  /* Textual's compact style joins a group's label to the next key */
    }
    """

    def __init__(self) -> None:
        super().__init__(compact=False)
        self._widths: dict[Widget, int] = {}  # the items' widths, margins included

    async def recompose(self) -> None:  # the bindings changed (another pane, a dialog): new keys
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        compact = event.size.width < COMPACT_BELOW
        if compact != self.compact:  # every key changes width: show them all to measure them again
            self.compact = compact
            for child in self.children:
                child.display = True
        self.call_after_refresh(self._fit)

    def _units(self) -> list[list[Widget]]:
        """The footer's items in order, a key group together with the label that follows it."""
        units: list[list[Widget]] = []
        for child in self.children:
            if child.has_class("-command-palette"):
                continue
            if type(child).__name__ == "FooterLabel" and units:
                units[-1].append(child)
            else:
                units.append([child])
        return units

    def _fit(self) -> None:
        units = self._units()
        # a shown item is measured as laid out; a left-out one keeps the width it had when last shown
        widths = {item: item.outer_size.width + item.styles.margin.width if item.display else self._widths.get(item, 0)
                  for unit in units for item in unit}
        if not all(widths.values()):  # not laid out yet
            self.call_after_refresh(self._fit)
            return
        self._widths = widths
        palette = sum(child.outer_size.width for child in self.children if child.has_class("-command-palette"))
        kept = [unit for unit in units if getattr(unit[0], "action", None) == KEPT_ACTION]
        room = self.size.width - palette - sum(widths[item] for unit in kept for item in unit)
        for unit in units:  # in order; a key too wide for what is left gives way to a narrower one after it
            if unit in kept:
                continue
            width = sum(widths[item] for item in unit)
            for item in unit:
                item.display = width <= room
            if width <= room:
                room -= width
