"""The Results pane's figures drawn as text: the confusion matrix as a heat-map."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

# A 256-colour-safe ramp from "none" to "all of the row".
HEAT = ("grey11", "grey23", "navy_blue", "dark_blue", "blue3", "blue1", "dodger_blue2", "dodger_blue1",
        "deep_sky_blue1", "turquoise2")


def heatmap(classes: list[str], matrix: list[list[int]], normalised: bool,
            title: str = "confusion matrix: rows true, columns predicted") -> Table:
    table = Table(title=title + (" (row share)" if normalised else ""), show_lines=False, pad_edge=False)
    table.add_column("true \\ pred", no_wrap=True)
    for name in classes:
        table.add_column(name[:10], justify="right", no_wrap=True)
    for i, (name, row) in enumerate(zip(classes, matrix)):
        total = sum(row) or 1
        cells = []
        for j, n in enumerate(row):
            share = n / total
            label = f"{share:.2f}" if normalised else str(n)
            style = f"{'bold ' if i == j else ''}white on {HEAT[min(len(HEAT) - 1, int(share * len(HEAT)))]}"
            cells.append(Text(f" {label} ", style=style))
        table.add_row(f"{name[:12]} ({sum(row)})", *cells)
    return table
