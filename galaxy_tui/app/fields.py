"""Figures kept whole: lines of labelled figures that wrap only between figures, and the columns of a table that fit
whole (the rest give way from the right)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text


def pack_fields(fields: list[Text], width: int) -> Text:
    """Fields side by side, two spaces apart, a new line only between fields: a label never parts from
    its value ("loss" on one line and 0.0412 on the next)."""
    packed, used = Text(), 0
    for field_text in fields:
        length = field_text.cell_len
        if used and used + 2 + length > width:
            packed.append("\n")
            used = 0
        elif used:
            packed.append("  ")
            used += 2
        packed.append_text(field_text)
        used += length
    return packed


def fit_path(text: str, width: int) -> str:
    """A line holding a long path, kept to `width` by leaving out leading folders ("…/realdata/gz1_small"):
    a path has no spaces to wrap at, and its end names the data; other lines are left to wrap between words."""
    if len(text) <= width or " " in text or "/" not in text or width < 8:
        return text
    parts = text.split("/")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(kept) + 2 > width:
            break
        kept = f"{part}/{kept}"
    return f"…/{kept}" if len(kept) + 2 <= width else "…" + text[-(width - 1):]


def fitting_columns(widths: Sequence[int], room: int, padding: int) -> int:
    """How many leading columns fit whole in `room` cells, keeping room for the `+N→` mark when some do not."""
    drawn = [width + 2 * padding for width in widths]
    if room <= 0 or sum(drawn) <= room:
        return len(widths)
    shown, used = 0, 0
    for index, width in enumerate(drawn):
        mark = len(f"+{len(widths) - index - 1}→") + 2 * padding
        if used + width + mark > room:
            break
        shown, used = index + 1, used + width
    return shown
