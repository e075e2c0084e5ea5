"""Looking at galaxies: a gallery of a dataset's labelled galaxies, class by class, tiles filling the screen at
a size the person picks (`z`), and one galaxy at a time as large as the screen allows, its caption beside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Static
from textual_image.widget import Image as ImageWidget

from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.footer import FittingFooter
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.thumbs import for_screen, galaxy_picture, readable_class, size_square
from galaxy_tui.data.images import ImageUnreadable

if TYPE_CHECKING:
    from galaxy_tui.data.catalog import Dataset
    from galaxy_tui.registry import Labelling

FIRST_TILE = 32  # cells across a tile at first: as many image pixels drawn with half-blocks (two rows a cell)
CAPTION_COLUMNS = 30  # the large view keeps this much beside the picture for the caption
BLANK = PILImage.new("RGB", (8, 8))


def gallery_layouts(width: int, height: int) -> list[tuple[int, int, int]]:
    """The pages that fill `width` x `height` cells with square tiles (each with a caption line and a gap):
    (across, down, tile width), smallest tiles first, leaving out those barely larger than a fuller page's."""
    found: set[tuple[int, int, int]] = set()
    for down in range(1, max(1, height // 9) + 1):
        side = 2 * (height // down - 2)
        across = max(1, (width + 1) // (side + 1))
        found.add((across, down, min(side, (width + 1) // across - 1)))
    for across in range(1, max(1, width // 15) + 1):
        side = (width + 1) // across - 1
        down = max(1, height // (side // 2 + 2))
        found.add((across, down, min(side, 2 * (height // down - 2))))
    fitting = [layout for layout in found if layout[2] >= 14]
    def dominates(other: tuple[int, int, int], layout: tuple[int, int, int]) -> bool:
        """As many tiles or more, hardly smaller (10%), and better in one of the two."""
        more = (other[0] * other[1], other[2]) > (layout[0] * layout[1], layout[2])
        return more and other[0] * other[1] >= layout[0] * layout[1] and other[2] >= 0.9 * layout[2]
    kept = [layout for layout in fitting if not any(dominates(other, layout) for other in fitting)]
    return sorted(kept, key=lambda layout: (layout[2], -layout[0] * layout[1])) or [(1, 1, 14)]


@dataclass(frozen=True)
class Galaxy:
    load: Callable[[], PILImage.Image]  # the picture, made for the eye (it may read a file)
    caption: str                        # a few short lines: id, class, prediction or votes
    galaxy_id: str = ""                 # its id in its dataset, where it has one (`s`: the galaxies like it)


class GalaxyView(ModalScreen[None]):
    """One galaxy as large as the screen allows, with its caption; the arrows step through the list."""

    BINDINGS = [Binding("escape,q,enter", "dismiss(None)", "Close"), Binding("left,up", "step(-1)", "Previous"),
                Binding("right,down", "step(1)", "Next"),
                Binding("g", "app.toggle_grey", "Colour / grey"),  # a modal screen hides the app's keys
                Binding("s", "similar", "Similar")]

    def __init__(self, galaxies: Sequence[Galaxy], index: int, similar: Callable[[str], None] | None = None):
        super().__init__(id="galaxy-view")
        self.galaxies, self.index, self.similar = galaxies, index, similar

    def compose(self) -> ComposeResult:
        with Horizontal(id="galaxy-view-box"):
            yield ImageWidget(BLANK, id="galaxy-large")
            with Vertical(id="galaxy-side"):
                yield Static("", id="galaxy-caption")
                yield Static("← → the previous / next galaxy · g colour or grey"
                             + (" · s similar galaxies" if self.similar else "") + " · Escape closes", classes="hint")

    def on_mount(self) -> None:
        self._show()

    def on_resize(self) -> None:
        """The picture takes the whole height (or what the caption's column leaves of the width)."""
        box = self.query_one("#galaxy-view-box")
        width, height = box.size.width or self.size.width, box.size.height or self.size.height
        size_square(self.query_one("#galaxy-large"), max(14, min(2 * height, width - CAPTION_COLUMNS - 2)))

    def redraw_galaxies(self) -> None:
        self._show()

    def action_step(self, delta: int) -> None:
        self.index = max(0, min(len(self.galaxies) - 1, self.index + delta))
        self._show()

    def action_similar(self) -> None:
        galaxy_id = self.galaxies[self.index].galaxy_id
        if self.similar is None or not galaxy_id:
            self.app.notify("similar galaxies need a galaxy of a curated run's dataset", severity="warning")
            return
        self.similar(galaxy_id)

    def _show(self) -> None:
        galaxy = self.galaxies[self.index]
        self.query_one("#galaxy-large", ImageWidget).image = for_screen(galaxy.load(), self.app.grey_galaxies)  # type: ignore[attr-defined]
        caption = Text(f"{self.index + 1} of {len(self.galaxies)}   ", style="dim")
        caption.append(galaxy.caption)
        self.query_one("#galaxy-caption", Static).update(caption)


def fitted_caption(caption: str, width: int) -> str:
    """A tile's caption ("spiral · BALD 0.52") cut to `width` at its parts: the leading parts that fit, whole (a
    narrow tile shows "spiral", not "spiral · BA"); where the first part alone is too wide, its leading words
    ("colour_gradient", not "colour_gradient ↑")."""
    parts = caption.split(" · ")
    while len(parts) > 1 and len(" · ".join(parts)) > width:
        parts.pop()
    words = parts[0].split(" ")
    while len(parts) == 1 and len(words) > 1 and len(" ".join(words)) > width:
        words.pop()
    return " · ".join([" ".join(words), *parts[1:]])


class TileCaption(Static):
    """A tile's caption line, fitted to the tile's width whenever it is drawn (the tiles' size changes with `z`)."""

    def __init__(self, caption: str):
        super().__init__(classes="gallery-caption")
        self.caption = caption

    def render(self) -> Text:
        return Text(fitted_caption(self.caption, self.size.width), no_wrap=True, overflow="ellipsis")


class GalaxyTile(Vertical, can_focus=True):
    def __init__(self, position: int, caption: str):
        super().__init__(classes="gallery-tile")
        self.position, self.caption = position, caption

    def compose(self) -> ComposeResult:
        yield ImageWidget(BLANK, classes="gallery-image")
        yield TileCaption(self.caption)


def _fraction(value: float) -> str:
    """A vote fraction, or — for a question the volunteers never reached (the catalogue has no fraction)."""
    return f"{value:.2f}" if np.isfinite(value) else "—"


def vote_line(smooth: float, disk: float, edgeon: float, spiral: float, volunteers: float) -> str:
    """The volunteers' answers behind a label, as the enlarged views show them."""
    line = (f"votes: smooth {_fraction(smooth)}  disk {_fraction(disk)}  edge-on {_fraction(edgeon)}  "
            f"spiral {_fraction(spiral)}")
    return line + (f"  ({int(volunteers)} volunteers)" if np.isfinite(volunteers) else "")


def vote_caption(dataset: Dataset, row: int, class_name: str) -> str:
    frame = dataset.frame
    caption = f"{frame['id'].iloc[row]}\n{readable_class(class_name)}"
    if dataset.has_votes:
        votes = dataset.votes
        caption += "\n" + vote_line(votes.smooth[row], votes.disk[row], votes.edgeon_yes[row], votes.spiral[row],
                                    float(frame["total_classifications"].iloc[row]))
    return caption


def dataset_picture(dataset: Dataset, row: int, size: int = 128) -> PILImage.Image:
    try:
        return galaxy_picture(dataset, row, size)
    except ImageUnreadable:
        return BLANK


def dataset_galaxies(dataset: Dataset, rows: Sequence[int], class_names: Sequence[str]) -> list[Galaxy]:
    """Galaxies of `dataset` for GalaxyView: rows shown as the classes they were labelled."""
    ids = dataset.frame["id"]
    return [Galaxy(lambda row=row: dataset_picture(dataset, row, 256), vote_caption(dataset, row, name),
                   str(ids.iloc[row])) for row, name in zip(rows, class_names)]


class TileGallery(Screen[None]):
    """Galaxies of one dataset as tiles filling the screen, a page at a time: a subclass says which (`entries`:
    dataset rows and their tile captions) and what the title says; the arrows move, Enter opens one large."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Close"),
                Binding("pagedown", "page(1)", "Next page"), Binding("pageup", "page(-1)", "Previous page"),
                Binding("left", "move(-1)", show=False), Binding("right", "move(1)", show=False),
                Binding("up", "move_row(-1)", show=False), Binding("down", "move_row(1)", show=False),
                Binding("enter", "open", "Open large"), Binding("s", "similar", "Similar"),
                Binding("z", "zoom(1)", "Larger"), Binding("Z", "zoom(-1)", "Smaller")]

    def __init__(self, dataset: Dataset, screen_id: str, similar: Callable[[str], None] | None = None):
        super().__init__(id=screen_id)
        self.dataset = dataset
        self._similar = similar
        self.page = 0
        self.shown = 0  # which list is on screen: pictures read for another are dropped
        self.tile = FIRST_TILE  # the least size tiles take (z: larger; spiral arms read from about 50)
        self._pictures: list[PILImage.Image] = []

    def entries(self) -> list[tuple[int, str]]:
        """The galaxies of the list shown: (dataset row, tile caption), in order."""
        raise NotImplementedError

    def heading(self) -> list[Text]:
        """The title's first fields: what the list is."""
        raise NotImplementedError

    def hints(self) -> tuple[str, ...]:
        return ()

    def similar(self, galaxy_id: str) -> None:
        """`s` on a galaxy: the galaxies most like it, in a curated run's embedding of this dataset."""
        if self._similar is None:
            self.app.notify("similar galaxies need a curated run of this dataset", severity="warning")
            return
        self._similar(galaxy_id)

    def large_galaxies(self) -> list[Galaxy]:
        """The list as GalaxyView shows it (the default caption: the tile's, with the volunteers' votes)."""
        ids = self.dataset.frame["id"]
        return [Galaxy(lambda row=row: dataset_picture(self.dataset, row, 256), caption, str(ids.iloc[row]))
                for row, caption in self.entries()]

    def compose(self) -> ComposeResult:
        yield Static("", id="gallery-title")
        yield Grid(id="gallery-grid")
        yield FittingFooter()

    def on_resize(self) -> None:  # also the first layout: the page holds as many tiles as the size allows
        self.call_after_refresh(self._show_page)

    @property
    def _layout(self) -> tuple[int, int, int]:
        """Tiles across and down, and the width each takes: the fullest page whose tiles are the size asked
        for or larger."""
        layouts = self._layouts()
        return next((layout for layout in layouts if layout[2] >= self.tile), layouts[-1])

    def _layouts(self) -> list[tuple[int, int, int]]:
        grid = self.query_one("#gallery-grid")
        width, height = grid.size.width or self.size.width, grid.size.height or max(1, self.size.height - 3)
        return gallery_layouts(width, height)

    @property
    def per_page(self) -> int:
        across, down, _tile = self._layout
        return across * down

    def focused_position(self) -> int | None:
        """The position in the list of the galaxy whose tile has the focus."""
        return self.focused.position if isinstance(self.focused, GalaxyTile) else None

    async def show_list(self, focus: int = 0) -> None:
        """Show the list from its first page (the subclass changed which list)."""
        self.shown += 1
        self.page = 0
        await self._show_page(focus)

    async def _show_page(self, focus: int = 0) -> None:
        """Awaited by the keys that change the page, so the next key lands on the new tiles."""
        entries = self.entries()
        pages = max(1, -(-len(entries) // self.per_page))
        self.page = max(0, min(pages - 1, self.page))
        fields = [*self.heading(), Text(f"{len(entries)} galaxies"), Text(f"page {self.page + 1} of {pages}")]
        fields += [Text(hint, style="dim") for hint in (*self.hints(), "PgUp/PgDn page", "arrows move",
                                                         f"z/Z size ({self._layout[2]} px)", "Enter opens",
                                                         "Escape closes")]
        self.query_one("#gallery-title", Static).update(pack_fields(fields, max(20, self.size.width - 2)))
        grid = self.query_one("#gallery-grid", Grid)
        across, _down, tile = self._layout
        grid.styles.grid_size_columns = across
        grid.styles.grid_columns = str(tile)
        grid.styles.grid_rows = str(tile // 2 + 2)
        start = self.page * self.per_page
        chosen = entries[start:start + self.per_page]
        await grid.remove_children()
        self._pictures = []  # until this page's are read: `g` must not draw the last page's on these tiles
        tiles = [GalaxyTile(start + i, caption) for i, (_row, caption) in enumerate(chosen)]
        await grid.mount_all(tiles)
        for tile_widget in tiles:
            tile_widget.styles.width, tile_widget.styles.height = tile, tile // 2 + 2
            size_square(tile_widget.query_one(ImageWidget), tile)
        if tiles:
            tiles[min(focus, len(tiles) - 1)].focus()
        self._load_pictures([row for row, _caption in chosen], self.shown, self.page)

    @work(thread=True, exclusive=True, group="gallery")
    def _load_pictures(self, rows: list[int], shown: int, page: int) -> None:
        pictures = [dataset_picture(self.dataset, row, 192) for row in rows]
        deliver(self.app, self._put_pictures, pictures, shown, page)

    def _put_pictures(self, pictures: list[PILImage.Image], shown: int, page: int) -> None:
        if (shown, page) != (self.shown, self.page):
            return  # the person moved on meanwhile
        self._pictures = pictures
        self.redraw_galaxies()

    def redraw_galaxies(self) -> None:
        grey = self.app.grey_galaxies  # type: ignore[attr-defined]
        for tile, picture in zip(self.query(GalaxyTile), self._pictures):
            tile.query_one(ImageWidget).image = for_screen(picture, grey)

    # ------------------------------------------------------------------ keys
    async def action_page(self, delta: int, focus: int = 0) -> None:
        self.page += delta
        await self._show_page(focus)

    def _focused_slot(self) -> int:
        tiles = list(self.query(GalaxyTile))
        return tiles.index(self.focused) if self.focused in tiles else 0

    async def action_move(self, delta: int) -> None:
        slot, tiles = self._focused_slot() + delta, list(self.query(GalaxyTile))
        if 0 <= slot < len(tiles):
            tiles[slot].focus()
        elif slot >= len(tiles) and (self.page + 1) * self.per_page < len(self.entries()):
            await self.action_page(1)
        elif slot < 0 and self.page > 0:
            await self.action_page(-1, focus=self.per_page - 1)

    async def action_move_row(self, delta: int) -> None:
        await self.action_move(delta * self._layout[0])

    async def action_zoom(self, step: int) -> None:
        """The next tile size up or down; the page then starts at the galaxy that had the focus."""
        first = self.page * self.per_page + self._focused_slot()
        layouts = self._layouts()
        index = layouts.index(self._layout)
        self.tile = layouts[max(0, min(len(layouts) - 1, index + step))][2]
        self.page = first // self.per_page
        await self._show_page(focus=first % self.per_page)

    def action_open(self) -> None:
        if isinstance(self.focused, GalaxyTile):
            self.app.push_screen(GalaxyView(self.large_galaxies(), self.focused.position, self.similar))

    def action_similar(self) -> None:
        position = self.focused_position()
        if position is not None:
            row = self.entries()[position][0]
            self.similar(str(self.dataset.frame["id"].iloc[row]))


class GalleryScreen(TileGallery):
    """A dataset's labelled galaxies, one class at a time."""

    BINDINGS = [Binding("right_square_bracket", "switch_class(1)", "Next class"),
                Binding("left_square_bracket", "switch_class(-1)", "Previous class")]

    def __init__(self, dataset: Dataset, labelling: Labelling, similar: Callable[[str], None] | None = None):
        super().__init__(dataset, "gallery", similar)
        labels = dataset.labels(labelling)
        self.members = [np.flatnonzero(labels == k) for k in range(len(dataset.classes))]
        self.class_index = next((k for k, m in enumerate(self.members) if len(m)), 0)

    def entries(self) -> list[tuple[int, str]]:
        ids = self.dataset.frame["id"]
        return [(int(row), str(ids.iloc[int(row)])) for row in self.members[self.class_index]]

    def heading(self) -> list[Text]:
        name = readable_class(self.dataset.classes[self.class_index])
        return [Text(f"{self.dataset.name}: {name}", style="bold")]

    def hints(self) -> tuple[str, ...]:
        return ("[ ] class",)

    def large_galaxies(self) -> list[Galaxy]:
        members = [int(row) for row in self.members[self.class_index]]
        return dataset_galaxies(self.dataset, members, [self.dataset.classes[self.class_index]] * len(members))

    async def action_switch_class(self, delta: int) -> None:
        count = len(self.members)
        for step in range(1, count + 1):  # skip classes with no galaxies at this labelling
            candidate = (self.class_index + delta * step) % count
            if len(self.members[candidate]):
                self.class_index = candidate
                break
        await self.show_list()
