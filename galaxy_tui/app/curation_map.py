"""The map of a curated run's embedding (`p` in a curation list): its 2-D layout (PCA, or UMAP where the job made
one) as a plotext scatter, coloured by class or, where the dataset has votes, by an answer's vote fraction. A
cross marks the cursor; the arrows move it, Enter opens the galaxies nearest to it as a gallery."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.footer import FittingFooter
from galaxy_tui.app.thumbs import readable_class

if TYPE_CHECKING:
    from galaxy_tui.curation.session import CurationSession

DRAWN = 6000  # points drawn at most (a sample of the rest); the cursor's galaxies come from all of them
NEAR = 24
COLOURS = ("cyan", "magenta", "green", "red", "blue", "yellow", "white")  # names plotext and Rich share
FRACTION_BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01))
BIN_COLOURS = ("blue", "cyan", "green", "yellow", "red")


def colourings(session: CurationSession) -> list[str]:
    """"class", then the answers whose vote fractions the dataset has."""
    return ["class", *(("smooth", "disk") if session.dataset.has_votes else ())]


def nearest_on_map(layout: pd.DataFrame, x: float, y: float, count: int = NEAR) -> pd.DataFrame:
    """The galaxies nearest to (x, y) on the map, each axis scaled by its spread (as the screen shows them)."""
    spread = layout[["x", "y"]].std().replace(0, 1).to_numpy()
    distance = np.hypot((layout["x"].to_numpy() - x) / spread[0], (layout["y"].to_numpy() - y) / spread[1])
    order = np.argsort(distance, kind="stable")[:count]
    return layout.iloc[order].assign(distance=np.round(distance[order], 4)).reset_index(drop=True)


class MapScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Close"), Binding("enter", "open", "Galaxies here"),
                Binding("c", "colour", "Colour by"),
                Binding("left", "move(-1, 0)", show=False), Binding("right", "move(1, 0)", show=False),
                Binding("up", "move(0, 1)", show=False), Binding("down", "move(0, -1)", show=False)]

    def __init__(self, session: CurationSession, open_galaxies: Callable[[pd.DataFrame, str], None]):
        super().__init__(id="curation-map")
        self.session, self.open_galaxies = session, open_galaxies
        self.points = session.layout
        rng = np.random.default_rng(0)
        self.drawn = self.points.iloc[np.sort(rng.choice(len(self.points), min(DRAWN, len(self.points)),
                                                         replace=False))]
        self.cursor = (float(self.points["x"].median()), float(self.points["y"].median()))
        self.colouring = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="map-title")
        yield PlotextPlot(id="map-plot")
        yield FittingFooter()

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _series(self) -> list[tuple[str, pd.DataFrame, str]]:
        """(legend, points, colour) for the colouring chosen."""
        chosen = colourings(self.session)[self.colouring]
        labels = self.drawn["id"].map(self.session.label_of)
        if chosen == "class":  # the galaxies without a label first, under the classes' points where they share a cell
            names = ["", *self.session.dataset.classes]
            return [(readable_class(name) or "no label", self.drawn[labels.to_numpy() == name],
                     COLOURS[(k - 1) % len(COLOURS)] if name else "gray") for k, name in enumerate(names)]
        votes = getattr(self.session.dataset.votes, chosen)
        rows = self.drawn["id"].map(self.session.dataset_row)
        fractions = np.array([votes[int(row)] if pd.notna(row) else np.nan for row in rows])
        return [(f"{chosen} {low:.1f}-{min(high, 1):.1f}", self.drawn[(fractions >= low) & (fractions < high)],
                 colour) for (low, high), colour in zip(FRACTION_BINS, BIN_COLOURS)]

    def _draw(self) -> None:
        plot = self.query_one("#map-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        legend = []
        for name, points, colour in self._series():
            if len(points):
                plt.scatter(points["x"].to_list(), points["y"].to_list(), marker="dot", color=colour)
                legend.append(Text(f"• {name}", style=colour if colour != "gray" else "dim"))
        plt.scatter([self.cursor[0]], [self.cursor[1]], marker="+", color="white")
        plt.title("")
        plot.refresh()
        drawn = f"{len(self.drawn)} of {len(self.points)} drawn" if len(self.drawn) < len(self.points) else \
            f"{len(self.points)} galaxies"
        fields = [Text(f"{self.session.run_id}: the map ({self.session.layout_kind})", style="bold"), Text(drawn),
                  *legend, *[Text(hint, style="dim") for hint in ("arrows move +", "Enter: the galaxies there",
                                                                 "c colour by", "Escape closes")]]
        self.query_one("#map-title", Static).update(pack_fields(fields, max(20, self.size.width - 2)))

    def action_move(self, dx: int, dy: int) -> None:
        span = self.points[["x", "y"]].max() - self.points[["x", "y"]].min()
        self.cursor = (self.cursor[0] + dx * float(span["x"]) / 40, self.cursor[1] + dy * float(span["y"]) / 20)
        self._draw()

    def action_colour(self) -> None:
        self.colouring = (self.colouring + 1) % len(colourings(self.session))
        self._draw()

    def action_open(self) -> None:
        self.open_galaxies(nearest_on_map(self.points, *self.cursor),
                           f"the map at ({self.cursor[0]:.2f}, {self.cursor[1]:.2f})")
