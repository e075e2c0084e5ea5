"""Lines of labelled figures that wrap only between figures."""

from __future__ import annotations

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
