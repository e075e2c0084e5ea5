"""Galaxy thumbnails in the terminal (textual-image: graphics protocol where there is one, half-blocks
where there is none), made for the eye with a centre crop and an asinh stretch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from textual import work
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


def galaxy_picture(dataset: Dataset, row: int, size: int) -> PILImage.Image:
    """One galaxy of `dataset` made for the eye; raises ImageUnreadable. Survey cut-outs with the galaxy
    small in the middle are cropped harder than Galaxy10/GalaxyMNIST's already tight ones."""
    crop = 0.5 if dataset.kind in ("synthetic", "image-folder", "gz2-hart16", "kaggle-gz2") else 0.7
    return thumbnail(dataset.read_image(dataset.frame["ref"].iloc[row]), size, crop)


def size_square(widget: Widget, columns: int, max_rows: int = 999) -> None:
    """A square galaxy `columns` cells wide: half-blocks draw two pixel rows per cell, so half as tall."""
    widget.styles.width = columns
    widget.styles.height = min(max_rows, columns // 2)


def readable_class(name: str) -> str:
    """A class name that wraps between words ("spiral_clockwise" -> "spiral clockwise")."""
    return name.replace("_", " ")


class ThumbnailStrip(Vertical):
    """A row of sample thumbnails per class of a dataset at the current labelling."""

    shown: str | None = None  # the dataset whose thumbnails are on screen
    _asked: tuple[Dataset, Labelling] | None = None

    def show_dataset(self, dataset: Dataset, labelling: Labelling) -> None:
        self._asked = (dataset, labelling)
        self.render_samples(dataset, labelling)

    def redraw(self) -> None:
        """Draw the same galaxies again (colour/grey changed)."""
        if self._asked is not None:
            self.render_samples(*self._asked)

    @work(thread=True, exclusive=True, group="thumbs")
    def render_samples(self, dataset: Dataset, labelling: Labelling) -> None:
        labels = dataset.labels(labelling)
        rows: list[tuple[str, list[PILImage.Image]]] = []
        rng = np.random.default_rng(0)
        for k, name in enumerate(dataset.classes):
            members = np.flatnonzero(labels == k)
            chosen = rng.choice(members, size=min(PER_CLASS, len(members)), replace=False) if len(members) else []
            images = []
            for i in chosen:
                try:
                    images.append(galaxy_picture(dataset, int(i), 96))
                except ImageUnreadable:
                    continue
            rows.append((name, images))
        if not get_current_worker().is_cancelled:
            deliver(self.app, self._mount_rows, dataset.name, rows)

    async def _mount_rows(self, dataset: str, rows: list[tuple[str, list[PILImage.Image]]]) -> None:
        lines = [Horizontal(Label(readable_class(name), classes="thumb-class"),
                            *(ImageWidget(for_screen(image, self.app.grey_galaxies), classes="thumb-image")  # type: ignore[attr-defined]
                              for image in images), classes="thumb-row")
                 for name, images in rows]
        await self.remove_children()
        await self.mount_all(lines)
        self.fit_images()
        self.shown = dataset

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_images)

    def fit_images(self) -> None:
        """Thumbnails grow with the pane: those of a class share the width beside its name (14 to 32
        columns each; fewer are shown than would fit narrower)."""
        room = self.size.width - 15
        shown = max(1, min(PER_CLASS, room // 15))
        width = max(14, min(32, room // shown - 1))
        for row in self.query(".thumb-row"):
            row.styles.height = row.query_one(".thumb-class").styles.height = width // 2
            for k, image in enumerate(row.query(".thumb-image")):
                image.display = k < shown
                size_square(image, width)
