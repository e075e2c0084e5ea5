"""The Results pane's mistakes (and a vote-fraction run's worst residuals): captions, orders and the grid of
thumbnails that grows with the pane."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import Label, Static
from textual_image.widget import Image as ImageWidget

from galaxy_tui.analysis.fraction_figures import csv_number
from galaxy_tui.app.gallery import vote_line
from galaxy_tui.app.store import RunRecord
from galaxy_tui.app.thumbs import for_screen, readable_class, size_square, step_focus, tile_layout
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS, kind_of_metrics

MAX_ACROSS = 4
MISTAKE_ORDERS = {"confidence": "model confidence, most sure first",
                  "class": "true class, the most confident errors of each first",
                  "disagreement": "volunteer disagreement, most split first"}


def mistake_caption(row: dict[str, str]) -> str:
    """Three short lines that each fit a tile (cut with an ellipsis, never wrapped mid-word): the galaxy,
    what it is, what the model said and how sure it was."""
    return f"{row.get('id', '')}\ntrue {readable_class(row['true'])}\n{float(row['confidence']):.2f} " \
           f"{readable_class(row['predicted'])}"


def _number(row: dict[str, str], column: str) -> float:
    return csv_number(row.get(column))


def volunteer_line(row: dict[str, str]) -> str:
    """The vote fractions behind a mistake's true label, for the enlarged view ("" without votes)."""
    agreement = _number(row, "votes_agreement")
    if not math.isfinite(agreement):
        return ""
    fractions = (_number(row, f"votes_{column}") for column in
                 ("smooth", "disk", "edgeon_yes", "spiral", "total_classifications"))
    return vote_line(*fractions) + f"  · agreement {agreement:.2f}"


def residual_caption(row: dict[str, str], answers: list[str]) -> str:
    """A worst-residual tile: the galaxy, its RMSE, its most wrong answer (of those listed) true -> predicted."""
    def miss(answer: str) -> float:
        error = abs(_number(row, f"true_{answer}") - _number(row, f"pred_{answer}"))
        return error if math.isfinite(error) else -1.0

    worst = max(answers, key=miss) if answers else ""
    return f"{row.get('id', '')}\nrmse {_number(row, 'rmse'):.3f}\n{worst} " \
           f"{_number(row, f'true_{worst}'):.2f}→{_number(row, f'pred_{worst}'):.2f}"


def residual_details(row: dict[str, str], answers: list[str]) -> str:
    """Every answer of the listing, true -> predicted, for the enlarged view."""
    return "  ".join(f"{a} {_number(row, f'true_{a}'):.2f}→{_number(row, f'pred_{a}'):.2f}" for a in answers)


def ordered_mistakes(listing: list[dict[str, str]], order: str, classes: list[str]) -> list[dict[str, str]]:
    if order == "disagreement":  # the least agreement first; galaxies without votes last
        return sorted(listing, key=lambda row: agreement if math.isfinite(agreement := _number(row, "votes_agreement"))
                      else 2.0)
    by_confidence = sorted(listing, key=lambda row: -_number(row, "confidence"))
    if order == "class":  # in the run's class order (a class it no longer lists: last)
        return sorted(by_confidence, key=lambda row: classes.index(row["true"]) if row["true"] in classes
                      else len(classes))
    return by_confidence


def mistake_orders(has_votes: bool) -> list[str]:
    return [order for order in MISTAKE_ORDERS if has_votes or order != "disagreement"]


class MistakeCell(Vertical):
    """A tile of the Mistakes tab: a mistake, or a vote-fraction run's galaxy with a large residual."""

    can_focus = True

    def __init__(self, path: Path, row: dict[str, str], caption: str, details: str):
        super().__init__(classes="mistake")
        self.path, self.row, self.caption, self.details = path, row, caption, details

    def compose(self) -> ComposeResult:
        yield ImageWidget(for_screen(PILImage.open(self.path), self.app.grey_galaxies),  # type: ignore[attr-defined]
                          classes="mistake-image")
        yield Static(Text(self.caption, no_wrap=True, overflow="ellipsis"), classes="mistake-caption")


class MistakesGrid(Grid):
    BINDINGS = [Binding("left", "move(-1)", show=False), Binding("right", "move(1)", show=False),
                Binding("up", "move_row(-1)", show=False), Binding("down", "move_row(1)", show=False)]
    across = MAX_ACROSS

    async def show(self, record: RunRecord | None, heading: Static, order: str) -> tuple[bool, str]:
        """The run's mistakes (a vote-fraction run: its worst residuals) in `order`, and the heading above;
        whether the mistakes have vote fractions to sort by, and the order used."""
        await self.remove_children()
        heading.update("")
        shows = {CLASSIFICATION.name: self._show_mistakes, VOTE_FRACTIONS.name: self._show_residuals}
        return await shows[kind_of_metrics(record.metrics if record else None).name](record, heading, order)

    async def _show_mistakes(self, record: RunRecord | None, heading: Static, order: str) -> tuple[bool, str]:
        folder = record.info.dir / "results" / "mistakes" if record else None
        if folder is None or not (folder / "mistakes.csv").exists():
            await self.mount(Label("no mistakes to show"))
            return False, order
        with open(folder / "mistakes.csv", newline="") as handle:
            listing = list(csv.DictReader(handle))
        if not listing:
            split = (record.metrics or {}).get("split", "test")
            await self.mount(Label(f"no mistakes: every {split} galaxy was classified correctly"))
            return False, order
        has_votes = "votes_agreement" in listing[0]
        orders = mistake_orders(has_votes)
        if order not in orders:
            order = "confidence"
        following = orders[(orders.index(order) + 1) % len(orders)]
        heading.update(Text.assemble(  # wraps between words at any width (the pane may not be laid out yet)
            (f"{len(listing)} mistakes", "bold"), f" · sorted by {MISTAKE_ORDERS[order]} · ",
            (f"o: by {MISTAKE_ORDERS[following].split(',')[0]}", "dim"),
            ("" if has_votes else " (no vote fractions to sort by)", "dim"),
            (" · arrows move · Enter opens", "dim")))
        classes = list((record.metrics or {}).get("classes") or [])
        await self.mount_all([MistakeCell(folder / row["file"], row, mistake_caption(row), volunteer_line(row))
                              for row in ordered_mistakes(listing, order, classes)])
        self.fit_images()
        return has_votes, order

    async def _show_residuals(self, record: RunRecord | None, heading: Static, order: str) -> tuple[bool, str]:
        folder = record.info.dir / "results" / "residuals" if record else Path()
        if not (folder / "residuals.csv").exists():
            await self.mount(Label("no residuals to show"))
            return False, order
        with open(folder / "residuals.csv", newline="") as handle:
            listing = list(csv.DictReader(handle))
        answers = [c[len("true_"):] for c in (listing[0] if listing else {}) if c.startswith("true_")]
        heading.update(Text.assemble((f"{len(listing)} galaxies with the largest residuals", "bold"),
                                     " · worst first · ", ("arrows move · Enter opens", "dim")))
        await self.mount_all([MistakeCell(folder / row["file"], row, residual_caption(row, answers),
                                          residual_details(row, answers)) for row in listing])
        self.fit_images()
        return False, order  # residuals have one order: worst first

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_images)

    def fit_images(self) -> None:
        """Pictures grow with the pane: as many columns as fit at 48 cells (at least 32), each its share."""
        self.across, columns = tile_layout(self.size.width, MAX_ACROSS)
        self.styles.grid_size_columns = self.across
        for image in self.query(".mistake-image"):
            size_square(image, columns, max_rows=24)

    def action_move(self, delta: int) -> None:
        step_focus(list(self.query(MistakeCell)), self.app.focused, delta)

    def action_move_row(self, delta: int) -> None:
        self.action_move(delta * self.across)
