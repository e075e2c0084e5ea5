"""Galaxies big enough to see, growing with the terminal. Measured on real Galaxy Zoo JPEGs in grey half-blocks,
spiral arms read from about 50 image pixels across (one cell is one pixel across, two down): the sample strip and
the mistakes are at least 32 cells wide at 100x30 and 48 at 160x48, the large view takes the whole height
(56+ at 100x30, 96 at 160x48), the gallery fills its screen at the size `z` picks, and `g` redraws them at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual_image.widget import Image as ImageWidget

from fixture_runs import fixture_workspace
from galaxy_tui.app.gallery import Galaxy, GalaxyTile, GalaxyView, GalleryScreen, fitted_caption
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.thumbs import ThumbnailStrip
from pilot_helpers import NoGpu, screen_text, until
from workspace_fixture import tiny_workspace

STRIP_AND_MISTAKES = {(80, 24): 28, (100, 30): 32, (160, 48): 48}
LARGE = {(80, 24): 40, (100, 30): 56, (160, 48): 96}


def widths(widgets: list) -> list[int]:
    return [widget.size.width for widget in widgets]


@pytest.mark.parametrize("size", list(STRIP_AND_MISTAKES), ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_samples_grow_with_the_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    tiny_workspace(tmp_path, count=300)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=size) as pilot:
        strip = app.query_one(ThumbnailStrip)
        await until(pilot, lambda: strip.shown == "tiny" and strip.visible())
        await pilot.pause(0.3)
        shown = widths([thumb.query_one(".thumb-image") for thumb in strip.visible()])
        assert min(shown) >= STRIP_AND_MISTAKES[size], shown
        assert all(strip.region.contains_region(thumb.region) or not strip.region.overlaps(thumb.region)
                   for thumb in strip.visible())  # whole, never cut at the pane's right edge


@pytest.mark.parametrize("size", list(STRIP_AND_MISTAKES), ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_mistakes_grow_with_the_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    from galaxy_tui.app.panes.mistakes_grid import MistakeCell
    app = GalaxyApp(fixture_workspace(tmp_path), telemetry=NoGpu())
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(app.store.records) == 2)
        await pilot.press("4", "m")
        await until(pilot, lambda: len(app.query(MistakeCell)) > 0)
        await pilot.pause(0.3)
        shown = widths(list(app.query(".mistake-image")))
        assert min(shown) >= STRIP_AND_MISTAKES[size], shown


@pytest.mark.parametrize("size", list(LARGE), ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_large_view_takes_the_screen_and_g_redraws_it(tmp_path: Path, size: tuple[int, int]) -> None:
    picture = Image.new("RGB", (64, 64), (200, 40, 40))
    tiny_workspace(tmp_path, count=300)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=size) as pilot:
        await app.push_screen(GalaxyView([Galaxy(lambda: picture, "J123456 spiral\nvotes: smooth 0.10")], 0))
        await pilot.pause(0.3)
        large = app.screen.query_one("#galaxy-large", ImageWidget)
        assert large.size.width >= LARGE[size] and large.size.height * 2 >= LARGE[size]
        assert app.screen.region.contains_region(large.region)
        assert app.screen.query_one("#galaxy-caption").region.width >= 20  # the caption beside it, readable
        grey = app.grey_galaxies
        await pilot.press("g")
        await until(pilot, lambda: _is_grey(large) != grey)


def _is_grey(widget: ImageWidget) -> bool:
    red, green, blue = widget.image.convert("RGB").getpixel((10, 10))
    return red == green == blue


async def test_the_gallery_fills_the_screen_zooms_and_redraws(tmp_path: Path) -> None:
    tiny_workspace(tmp_path, count=300)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "tiny")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen) and len(app.screen.query(GalaxyTile)) > 0)
        gallery = app.screen
        await pilot.pause(0.3)
        tiles = list(gallery.query(GalaxyTile))
        across, down = len({tile.region.x for tile in tiles}), len({tile.region.y for tile in tiles})
        assert (across, down) == (4, 2) and across * (tiles[0].size.width + 1) >= 160 - 4  # the page is filled
        small = tiles[0].query_one(".gallery-image").size.width
        await pilot.press("z")  # the next fuller page of larger tiles: 3 x 1 of 52 cells after 4 x 2 of 39
        await until(pilot, lambda: 0 < len(gallery.query(GalaxyTile)) < len(tiles))
        await pilot.pause(0.3)
        large = gallery.query(GalaxyTile).first().query_one(".gallery-image").size.width
        assert large >= 48 > small and "(52 px)" in screen_text(app)
        assert all(gallery.region.contains_region(tile.region) for tile in gallery.query(GalaxyTile))
        await until(pilot, lambda: all(not _is_blank(tile) for tile in gallery.query(GalaxyTile)))
        before = [tile.query_one(ImageWidget).image for tile in gallery.query(GalaxyTile)]
        grey = app.grey_galaxies
        await pilot.press("g")
        await until(pilot, lambda: app.grey_galaxies != grey)
        after = [tile.query_one(ImageWidget).image for tile in gallery.query(GalaxyTile)]
        assert all(new is not old for new, old in zip(after, before))  # drawn again, without a page change
        if app.grey_galaxies:  # (in colour, a synthetic galaxy may be grey too: nothing to check by the pixels)
            assert all(_is_grey(tile.query_one(ImageWidget)) for tile in gallery.query(GalaxyTile))


def _is_blank(tile: GalaxyTile) -> bool:
    return tile.query_one(ImageWidget).image.size == (8, 8)


def test_gallery_pages_fill_the_screen_at_each_size() -> None:
    from galaxy_tui.app.gallery import gallery_layouts
    for width, height in ((80, 20), (100, 26), (160, 44), (240, 70)):
        layouts = gallery_layouts(width, height)
        sizes = [tile for _, _, tile in layouts]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        for across, down, tile in layouts:
            assert across * (tile + 1) - 1 <= width and down * (tile // 2 + 2) <= height  # inside the screen
            # full: another tile does not fit across, nor another row down
            assert (across + 1) * (tile + 1) - 1 > width or (down + 1) * (tile // 2 + 2) > height


def test_a_caption_too_wide_for_its_tile_keeps_whole_parts_then_whole_words() -> None:
    assert fitted_caption("spiral · BALD 0.52", 30) == "spiral · BALD 0.52"
    assert fitted_caption("spiral · BALD 0.52", 12) == "spiral"
    assert fitted_caption("second_peak ↑ · odd 0.999", 15) == "second_peak ↑"
    assert fitted_caption("colour_gradient ↑ · odd 0.988", 15) == "colour_gradient"  # the smallest tiles: 15 cells
    assert fitted_caption("colour_gradient ↑ · odd 0.988", 17) == "colour_gradient ↑"
