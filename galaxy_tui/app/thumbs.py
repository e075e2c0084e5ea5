"""Galaxy thumbnails in the terminal (textual-image: graphics protocol where there is one, half-blocks
where there is none), made for the eye with a centre crop and an asinh stretch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label
from textual_image.widget import Image as ImageWidget

from galaxy_tui.app.threads import deliver
from galaxy_tui.data.images import ImageUnreadable
from galaxy_tui.data.thumbnails import thumbnail
from galaxy_tui.registry import Labelling

if TYPE_CHECKING:
    from galaxy_tui.data.catalog import Dataset

PER_CLASS = 3


class Thumb(Vertical):
    """One thumbnail with a caption underneath."""

    def __init__(self, image: PILImage.Image, caption: str, **kwargs: object):
        super().__init__(classes="thumb", **kwargs)  # type: ignore[arg-type]
        self.image, self.caption = image, caption

    def compose(self) -> ComposeResult:
        yield ImageWidget(self.image, classes="thumb-image")
        yield Label(self.caption, classes="thumb-caption")


class ThumbnailStrip(Widget):
    """A row of sample thumbnails per class of a dataset at the current labelling."""

    def show_dataset(self, dataset: Dataset, labelling: Labelling) -> None:
        self.render_samples(dataset, labelling)

    @work(thread=True, exclusive=True, group="thumbs")
    def render_samples(self, dataset: Dataset, labelling: Labelling) -> None:
        labels = dataset.labels(labelling)
        crop = 0.5 if dataset.kind in ("synthetic", "image-folder", "gz2-hart16", "kaggle-gz2") else 0.7
        rows: list[tuple[str, list[PILImage.Image]]] = []
        rng = np.random.default_rng(0)
        for k, name in enumerate(dataset.classes):
            members = np.flatnonzero(labels == k)
            chosen = rng.choice(members, size=min(PER_CLASS, len(members)), replace=False) if len(members) else []
            images = []
            for i in chosen:
                try:
                    images.append(thumbnail(dataset.read_image(dataset.frame["ref"].iloc[int(i)]), 56, crop))
                except ImageUnreadable:
                    continue
            rows.append((name, images))
        deliver(self.app, self._mount_rows, rows)

    async def _mount_rows(self, rows: list[tuple[str, list[PILImage.Image]]]) -> None:
        await self.remove_children()
        for name, images in rows:
            line = Horizontal(classes="thumb-row")
            await self.mount(line)
            await line.mount(Label(name[:14], classes="thumb-class"))
            for image in images:
                await line.mount(ImageWidget(image, classes="thumb-image"))
