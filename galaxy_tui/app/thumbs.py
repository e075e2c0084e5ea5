"""Galaxy thumbnails in the terminal (textual-image: graphics protocol where there is one, half-blocks
where there is none), made for the eye with a centre crop and an asinh stretch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label
from textual.worker import get_current_worker
from textual_image.renderable import Image as ChosenRenderable
from textual_image.renderable.halfcell import Image as HalfcellRenderable
from textual_image.renderable.unicode import Image as UnicodeRenderable
from textual_image.widget import Image as ImageWidget

from galaxy_tui.app.threads import deliver
from galaxy_tui.data.images import ImageUnreadable
from galaxy_tui.data.thumbnails import thumbnail
from galaxy_tui.registry import Labelling

if TYPE_CHECKING:
    from galaxy_tui.data.catalog import Dataset

PER_CLASS = 3


# textual-image draws with the terminal's graphics protocol where it has one, else with coloured cells
DRAWN_WITH_CELLS = ChosenRenderable in (HalfcellRenderable, UnicodeRenderable)


def grey_by_default(color_system: str | None) -> bool:
    """Cells in a 256-colour terminal (tmux's default) quantise a galaxy's faint colours into red and
    green speckle; its 24-step grey ramp keeps the structure (arms, dust lanes) instead."""
    return DRAWN_WITH_CELLS and color_system != "truecolor"


def for_screen(image: PILImage.Image, grey: bool) -> PILImage.Image:
    return image.convert("L").convert("RGB") if grey else image


def eye_crop(kind: str) -> float:
    """How much of the centre to show: survey cut-outs with the galaxy small in the middle are cropped
    harder than Galaxy10/GalaxyMNIST's already tight ones."""
    return 0.5 if kind in ("synthetic", "image-folder", "gz2-hart16", "kaggle-gz2") else 0.7


def galaxy_picture(dataset: Dataset, row: int, size: int) -> PILImage.Image:
    """One galaxy of `dataset` made for the eye; raises ImageUnreadable."""
    return thumbnail(dataset.read_image(dataset.frame["ref"].iloc[row]), size, eye_crop(dataset.kind))


# Galaxy Zoo's spiral arms read from about 50 image pixels across (marginal at 52, clear at 88 in grey
# half-blocks); ellipticals and edge-on disks read at every size.
READABLE = 48
LEAST = 32
MOST = 64


def tile_layout(width: int, max_across: int, least: int = LEAST, best: int = READABLE,
                most: int = MOST) -> tuple[int, int]:
    """How many square pictures go across `width` cells (a cell apart), and how many cells wide each is:
    as many as fit at `best`, else as many as fit at `least`; each then takes its share up to `most`."""
    across = max(1, min(max_across, (width + 1) // (best + 1)))
    if across < 2:
        across = max(1, min(max_across, (width + 1) // (least + 1)))
    return across, max(14, min(most, (width + 1) // across - 1))


def size_square(widget: Widget, columns: int, max_rows: int = 999) -> None:
    """A square galaxy `columns` cells wide: half-blocks draw two pixel rows per cell, so half as tall."""
    widget.styles.width = columns
    widget.styles.height = min(max_rows, columns // 2)


def step_focus(items: list[Widget], focused: Widget | None, delta: int) -> None:
    """Move the focus `delta` places along `items` (from the first when none of them has it), stopping
    at either end."""
    if items:
        index = items.index(focused) if focused in items else 0
        items[max(0, min(len(items) - 1, index + delta))].focus()


def readable_class(name: str) -> str:
    """A class name that wraps between words ("spiral_clockwise" -> "spiral clockwise")."""
    return name.replace("_", " ")


class Thumbnail(Vertical, can_focus=True):
    """One sample galaxy in the strip: row `row` of the dataset, shown for class `class_name`."""

    def __init__(self, image: PILImage.Image, row: int, class_name: str):
        super().__init__(ImageWidget(image, classes="thumb-image"), classes="thumb")
        self.row, self.class_name = row, class_name


class ThumbnailStrip(Vertical):
    """A row of sample thumbnails per class of a dataset at the current labelling; the arrows move
    between them (Enter opening one is the Datasets pane's)."""

    BINDINGS = [Binding("left", "move(-1)", show=False), Binding("right", "move(1)", show=False),
                Binding("up", "move_row(-1)", show=False), Binding("down", "move_row(1)", show=False)]

    shown: str | None = None  # the dataset whose thumbnails are on screen
    shown_labelling: Labelling | None = None  # and the labelling that chose them
    _asked: tuple[Dataset, Labelling] | None = None

    def show_dataset(self, dataset: Dataset, labelling: Labelling) -> None:
        if self._asked is not None and self._asked[0] is dataset and self._asked[1] == labelling:
            return  # these galaxies are on screen or on their way
        self._asked = (dataset, labelling)
        self.render_samples(dataset, labelling)

    async def clear(self) -> None:
        """No thumbnails (the selected dataset is still loading): never another dataset's galaxies."""
        self._asked = None
        self.shown = self.shown_labelling = None
        await self.remove_children()

    def redraw(self) -> None:
        """Draw the same galaxies again (colour/grey changed)."""
        if self._asked is not None:
            self.render_samples(*self._asked)

    @work(thread=True, exclusive=True, group="thumbs")
    def render_samples(self, dataset: Dataset, labelling: Labelling) -> None:
        labels = dataset.labels(labelling)
        rows: list[tuple[str, list[tuple[int, PILImage.Image]]]] = []
        rng = np.random.default_rng(0)
        for k, name in enumerate(dataset.classes):
            members = np.flatnonzero(labels == k)
            chosen = rng.choice(members, size=min(PER_CLASS, len(members)), replace=False) if len(members) else []
            images = []
            for i in chosen:
                try:
                    images.append((int(i), galaxy_picture(dataset, int(i), 96)))
                except ImageUnreadable:
                    continue
            rows.append((name, images))
        if not get_current_worker().is_cancelled:
            deliver(self.app, self._mount_rows, dataset, labelling, rows)

    async def _mount_rows(self, dataset: Dataset, labelling: Labelling,
                          rows: list[tuple[str, list[tuple[int, PILImage.Image]]]]) -> None:
        if self._asked is None or self._asked[0] is not dataset or self._asked[1] != labelling:
            return  # drawn for a dataset or labelling no longer asked for
        grey = self.app.grey_galaxies  # type: ignore[attr-defined]
        lines = [widget for name, images in rows for widget in (
            Label(readable_class(name), classes="thumb-class"),  # above its galaxies: they take the whole width
            Horizontal(*(Thumbnail(for_screen(image, grey), row, name) for row, image in images),
                       classes="thumb-row"))]
        await self.remove_children()
        await self.mount_all(lines)
        self.fit_images()
        self.call_after_refresh(self.fit_images)  # once laid out: the first fit may see no width yet
        self.shown, self.shown_labelling = dataset.name, labelling

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_images)

    def fit_images(self) -> None:
        """Thumbnails grow with the pane: those of a class share its width (at least 48 cells each where
        there is room for two, up to 64, and no taller than the pane; fewer are shown than would fit)."""
        if not self.size.width:
            return
        pane = self.parent.size.height if isinstance(self.parent, Widget) else self.size.height
        shown, width = tile_layout(self.size.width - 2, PER_CLASS, most=max(LEAST, min(MOST, 2 * (pane - 3))))
        # queries, not query_one: a resize can land while new rows are still mounting their children
        # (_mount_rows fits them again once mounted)
        for row in self.query(".thumb-row"):
            row.styles.height = width // 2
            for k, thumb in enumerate(row.query(Thumbnail)):
                thumb.display = k < shown
                for image in thumb.query(".thumb-image"):
                    size_square(image, width)

    def visible(self) -> list[Thumbnail]:
        return [thumb for thumb in self.query(Thumbnail) if thumb.display]

    def action_move(self, delta: int) -> None:
        step_focus(self.visible(), self.app.focused, delta)

    def action_move_row(self, delta: int) -> None:
        """To the class above or below (classes without galaxies skipped), keeping the column."""
        rows = [row for row in ([t for t in line.query(Thumbnail) if t.display] for line in self.query(".thumb-row"))
                if row]
        here = next(((r, row.index(self.app.focused)) for r, row in enumerate(rows) if self.app.focused in row),
                    None)
        if here is not None and 0 <= here[0] + delta < len(rows):
            target = rows[here[0] + delta]
            target[min(here[1], len(target) - 1)].focus()
