"""Textual's footer, holding only whole keys: where a pane's keys do not all fit, those that do not give way."""

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

    async def recompose(self) -> None:  # the bindings changed (another pane, a dialog): new keys
        await super().recompose()
        self._fit()

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
        self.call_after_refresh(self._fit)  # once the keys have the compact style or not

    def _width(self, item: Widget) -> int:
        """Columns an item takes, from its content and style: the same whether it is laid out, left out, or on a
        screen under a dialog (which Textual does not lay out)."""
        content = item.get_content_width(self.size, self.app.size)
        return content + item.styles.gutter.width + item.styles.margin.width

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
        palette = sum(child.get_content_width(self.size, self.app.size) + child.styles.gutter.width
                      for child in self.children if child.has_class("-command-palette"))  # docked: no margin
        kept = [unit for unit in units if getattr(unit[0], "action", None) == KEPT_ACTION]
        room = self.size.width - palette - sum(self._width(item) for unit in kept for item in unit)
        for unit in units:  # in order; a key too wide for what is left gives way to a narrower one after it
            if unit in kept:
                continue
            width = sum(self._width(item) for item in unit)
            for item in unit:
                item.display = width <= room
            if width <= room:
                room -= width
