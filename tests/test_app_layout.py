"""What a person sees at the sizes people use (80x24 up): the size check, dialogs that fit and scroll,
the palette with every command, no widget ids or cut words on screen."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button

from galaxy_tui.app.commands import commands_for, key_label
from galaxy_tui.app.dialogs import ChoiceDialog, HelpScreen
from galaxy_tui.app.experiment_form import ExperimentForm
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.registry import load_registry
from pilot_helpers import NoGpu, open_experiment_form, screen_text, text_of, until
from workspace_fixture import tiny_workspace


def too_small(app: GalaxyApp) -> bool:
    return bool(app.query_one("#too-small").display) and not app.query_one("#body").display


def fully_visible(button: Button) -> bool:
    """The button's whole label is inside the screen and inside its dialog (not clipped to a bar)."""
    region, screen = button.region, button.screen.region
    label = str(button.label)
    return region.height >= 1 and screen.contains_region(region) and label in screen_text(button.app)


async def test_the_size_check_follows_each_resize_at_once(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        assert not too_small(app)
        await until(pilot, lambda: app.panes_ready)
        await pilot.press("4")
        results = app.query_one("#results-pane")
        for size, small in (((70, 20), True), ((100, 30), False), ((79, 24), True), ((80, 24), False)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert too_small(app) is small, size
            if not small:  # the pane's keys work again: the focus went back into it (hiding the body took it)
                await until(pilot, lambda: app.focused is not None and results in app.focused.ancestors_with_self)


async def test_the_experiment_form_fits_at_80x24_and_shows_its_error(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_experiment_form(pilot, "e")
        await pilot.pause()
        assert all(fully_visible(b) for b in app.screen.query(Button)), screen_text(app)
        epochs = app.screen.query_one("#f-epochs")
        epochs.value = "many"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "is not a whole number" in text_of(app, "#error-f-epochs"))
        assert isinstance(app.screen, ExperimentForm)  # not saved, not closed
        assert load_registry(registry.path).experiments["tiny"].epochs == 2


async def test_a_four_way_choice_fits_at_80x24(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ChoiceDialog(
            "gz2-resnet18 already has checkpoints (run 20261202-140000-gz2-resnet18, stopped, epoch 3/10). What now?",
            [("resume", "Resume", "r"), ("restart", "Restart", "t"), ("skip", "Skip: evaluate best", "s"),
             ("cancel", "Cancel", "c")]))
        await pilot.pause(0.3)
        buttons = list(app.screen.query(Button))
        assert len(buttons) == 4 and all(fully_visible(b) for b in buttons), screen_text(app)
        assert "What now?" in screen_text(app)


async def test_more_answers_than_a_row_holds_wrap_onto_rows_that_fit(tmp_path: Path) -> None:
    """The fetch dialog's five sources, and a relabel among Galaxy10's ten classes, at 80 columns."""
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        buttons = list(app.screen.query(Button))
        assert len(buttons) == 5 and all(fully_visible(b) for b in buttons), screen_text(app)
        assert len({b.region.y for b in buttons}) == 2  # two rows, each within the dialog
        await pilot.press("escape")
        classes = ["disturbed", "merging", "round smooth", "in-between round smooth", "cigar-shaped smooth",
                   "barred spiral", "unbarred tight spiral", "unbarred loose spiral", "edge-on without bulge",
                   "edge-on with bulge"]
        app.push_screen(ChoiceDialog("Relabel g1 (now merging)", [(c, c, str(k)) for k, c in enumerate(classes)]))
        await pilot.pause(0.3)
        buttons = list(app.screen.query(Button))
        assert len(buttons) == 10 and all(fully_visible(b) for b in buttons), screen_text(app)


async def test_help_wraps_descriptions_instead_of_cutting_them(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        body = app.screen.query_one("#help-body")
        words: set[str] = set()
        for _ in range(20):  # scroll through it all, as a person would with the arrows
            words |= set(screen_text(app).split())
            await pilot.press("down", "down", "down")
        for command in app.screen.commands:
            missing = [w for w in command.description.split() if w not in words]
            assert not missing, (command.name, missing)
        assert body.max_scroll_y >= 0


async def test_the_footer_leaves_out_whole_keys_and_always_shows_help(tmp_path: Path) -> None:
    """At 80 columns no pane's keys all fit: the footer used to cut the last one mid-word ("n Add datas",
    "p" without "Predict") and lose `? Help`. Now what does not fit is left out whole, and comes back wider."""
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())

    def footer_line() -> str:
        return screen_text(app).splitlines()[-1]

    def whole_words(pane: str, line: str) -> bool:
        whole = {w for c in commands_for(pane) for w in f"{key_label(c.key)} {c.footer_group or c.name}".split()}
        return set(line.replace("▏", " ").split()) <= whole | {"^p", "palette", "+-", "del"}

    def shown_whole(pane: str) -> tuple[list[str], list[str]]:
        line = footer_line()
        names = [c.footer_group or c.name for c in commands_for(pane) if c.show]
        return [n for n in names if n in line], [n for n in names if n not in line]

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panes_ready)
        for key, pane in zip("1234", ("datasets", "experiments", "monitor", "results"), strict=True):
            await pilot.press(key)
            await until(pilot, lambda: "? Help" in footer_line())
            await pilot.pause(0.2)
            shown, left_out = shown_whole(pane)
            assert left_out, footer_line()  # 80 columns hold not all of them...
            assert whole_words(pane, footer_line()), footer_line()  # ...and none is cut
        await open_experiment_form(pilot, "e")  # under a dialog, whose screen Textual does not lay out
        await pilot.pause(0.3)
        assert whole_words("experiments", footer_line()), footer_line()
        await pilot.press("escape")
        await pilot.resize_terminal(160, 48)
        await until(pilot, lambda: "q Quit" in footer_line())
        assert not shown_whole("experiments")[1], footer_line()


async def test_the_palette_holds_every_pane_s_commands_and_switches_pane(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        await pilot.press("3")  # on the Monitor, ask for a Datasets command
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Threshold", "space", *"+0.05")
        await pilot.pause(0.5)
        assert "]" in screen_text(app)  # the command's key is shown beside it
        await pilot.press("enter")
        await until(pilot, lambda: app.active_pane == "datasets")
        await until(pilot, lambda: load_registry(registry.path).experiments["tiny"].labels.threshold == 0.75)


async def test_first_paint_shows_no_widget_ids(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "#" not in screen_text(app).replace("# ", "")
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        assert "ThumbnailStrip" not in screen_text(app)


async def test_a_pane_chosen_before_the_first_scan_stays_chosen(tmp_path: Path) -> None:
    """The race CI met under load: a key chose a pane, its focus was still pending (Textual moves focus later)
    when the first scan arrived, and the scan chose another. Reproduced without timing: the first scan, which
    finds a live run (it would show the Monitor), is applied in the same tick as the key's action."""
    from fixture_runs import FrozenTelemetry, add_live_run, fixture_workspace
    from galaxy_tui.runs import run_info
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    app.reader.start = lambda: None  # type: ignore[union-attr, method-assign]  # the scan comes when the test says
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.panes_ready)
        app.action_show_pane("results")
        app._apply_scan([run_info(workspace / "runs" / live)], {})
        await pilot.pause()
        assert app.store.live_count == 1 and app.active_pane == "results"


async def test_a_pane_key_before_the_later_panes_are_built_lands_on_them(tmp_path: Path) -> None:
    """Three panes are built just after the first paint: a key pressed before then chooses its pane, which
    gets the focus once built (nothing raised, nothing lost)."""
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        if not app.panes_ready:  # a slow machine may have built them already
            app.action_show_pane("results")
            assert not app.query("#results-pane")
        await until(pilot, lambda: app.panes_ready)
        results = app.query_one("#results-pane")
        await until(pilot, lambda: app.focused is not None and results in app.focused.ancestors_with_self)
        assert app.active_pane == "results"


async def test_collection_is_back_on_once_the_start_is_done(tmp_path: Path) -> None:
    """`galaxy-tui` turns the garbage collector off for its start (cli.main); the app must turn it back on
    (what the start built frozen), or a day's session would never free a reference cycle."""
    import gc
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    gc.disable()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.panes_ready)
            assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


async def test_the_monitor_keeps_the_live_run_while_results_browse(tmp_path: Path) -> None:
    from fixture_runs import FrozenTelemetry, add_live_run, fixture_workspace
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.active_pane == "monitor")  # reopened while a run is live: its Monitor
        await until(pilot, lambda: live in text_of(app, "#monitor-header"))
        assert "1 run live" in app.sub_title
        await pilot.press("4")
        await until(pilot, lambda: "demo-tiny-20261101-120000" in text_of(app, "#results-summary"))
        await pilot.press("r")  # Results browses to the failed run; the Monitor stays on the live one
        runs = app.query_one("#runs-table")
        await until(pilot, lambda: runs.row_count == 3 and runs.has_focus)
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: "no results yet" in text_of(app, "#results-summary"))
        assert app.store.selected == live and app.active_pane == "results"
        await pilot.press("3")
        await until(pilot, lambda: live in text_of(app, "#monitor-header"))
        await pilot.press("r", "up", "enter")  # pinned on the Monitor: the finished run (the cursor stayed put)
        await until(pilot, lambda: "demo-tiny-20261101-120000" in text_of(app, "#monitor-header"))
        await pilot.press("3", "f")  # follow live again
        await until(pilot, lambda: live in text_of(app, "#monitor-header"))


async def test_a_resize_never_shows_figures_for_a_run_without_results(tmp_path: Path) -> None:
    """The summary is repacked to the new width on a resize: for the failed run (no metrics.json) it must keep
    saying there are no results, not invent a row of n/a figures (seen when the runs list closed at 100 columns)."""
    from fixture_runs import FrozenTelemetry, fixture_workspace
    app = GalaxyApp(fixture_workspace(tmp_path / "ws"))
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: "demo-tiny-20261101-120000" in text_of(app, "#results-summary"))
        app.store.browse("demo-tiny-20261101-110000")
        await until(pilot, lambda: "no results yet" in text_of(app, "#results-summary"))
        for size in ((100, 30), (120, 40), (160, 48)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.3)
            assert "no results yet" in text_of(app, "#results-summary"), size
            assert "n/a" not in text_of(app, "#results-summary"), size
        app.store.browse("demo-tiny-20261101-120000")  # a run with results is repacked with its figures
        await until(pilot, lambda: "demo-tiny-20261101-120000" in text_of(app, "#results-summary"))
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        assert "test accuracy" in text_of(app, "#results-summary")


async def test_cpu_and_ram_history_comes_from_the_run_so_it_survives_a_reopen(tmp_path: Path) -> None:
    """The worker's `host` events (written here by hand, as HostLogger writes them) draw the sparklines."""
    import json

    from textual.widgets import Sparkline

    from fixture_runs import add_live_run, fixture_workspace
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)
    with open(workspace / "runs" / live / "events.jsonl", "a") as events:
        for i in range(30):
            events.write(json.dumps({"t": 1.79e9 + i, "type": "host", "cpu_percent": 50.0 + i,
                                     "rss_bytes": (1 << 30) + i * (1 << 20)}) + "\n")
    app = GalaxyApp(workspace, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.active_pane == "monitor")
        await until(pilot, lambda: len(app.query(Sparkline)) == 2)
        cpu, ram = app.query(Sparkline)
        assert list(cpu.data) == [50.0 + i for i in range(30)] and len(ram.data) == 30
        await until(pilot, lambda: "79%" in screen_text(app) and "1.0 GiB" in screen_text(app))


def test_figures_wrap_between_fields_never_inside_one() -> None:
    from rich.text import Text

    from galaxy_tui.app.fields import pack_fields
    fields = [Text("demo-tiny-20261202-143309"), Text("training"), Text("epoch 2/8"),
              Text("step 15/19 of epoch 3"), Text("437 samples/s"), Text("loss 0.3810"), Text("ETA 0m25s")]
    for width in (30, 50, 80, 100):
        lines = pack_fields(fields, width).plain.split("\n")
        assert all(len(line) <= width for line in lines)
        assert sorted(part for line in lines for part in line.split("  ")) == sorted(f.plain for f in fields)


def test_a_mistake_caption_is_three_short_lines() -> None:
    from galaxy_tui.app.panes.mistakes_grid import mistake_caption
    caption = mistake_caption({"id": "587722981736", "true": "spiral_clockwise", "predicted": "edge_on",
                               "confidence": "0.934"})
    assert caption.split("\n") == ["587722981736", "true spiral clockwise", "0.93 edge on"]


async def test_galaxies_toggle_between_colour_and_the_grey_ramp(tmp_path: Path) -> None:
    """`g` redraws the thumbnails and the mistakes in grey (and back); grey is the default only where
    galaxies are drawn with cells in a terminal without truecolour."""
    import numpy as np
    from textual_image.widget import Image as ImageWidget

    from fixture_runs import FrozenTelemetry, fixture_workspace
    from galaxy_tui.app import thumbs
    from galaxy_tui.app.panes.mistakes_grid import MistakeCell
    assert not thumbs.grey_by_default("truecolor")
    assert thumbs.grey_by_default("256") is thumbs.DRAWN_WITH_CELLS

    def grey(widget: ImageWidget) -> bool:
        pixels = np.asarray(widget.image.convert("RGB")).astype(int)
        return bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())

    app = GalaxyApp(fixture_workspace(tmp_path / "ws"))
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        app.grey_galaxies = False
        await pilot.press("4")
        await until(pilot, lambda: len(app.query(MistakeCell)) == 4)
        assert not any(grey(w) for w in app.query(ImageWidget))
        await pilot.press("g")
        await until(pilot, lambda: len(app.query(MistakeCell)) == 4 and all(grey(w) for w in app.query(ImageWidget)))
        await pilot.press("1")
        await until(pilot, lambda: len(app.query(ImageWidget)) > 0 and all(grey(w) for w in app.query(ImageWidget)))
        await pilot.press("g")
        await until(pilot, lambda: len(app.query(ImageWidget)) > 0 and not any(grey(w) for w in app.query(ImageWidget)))


async def open_gallery(pilot, app: GalaxyApp) -> None:  # noqa: ANN001
    """Datasets -> v, once the dataset has loaded and the first page of galaxies is on screen."""
    from galaxy_tui.app.gallery import GalaxyTile, GalleryScreen
    await until(pilot, lambda: "total" in text_of(app, "#counts"))
    await pilot.press("v")
    await until(pilot, lambda: isinstance(app.screen, GalleryScreen) and len(app.screen.query(GalaxyTile)) > 0)


async def test_a_labelling_that_labels_no_galaxy_says_so_instead_of_an_empty_gallery(tmp_path: Path) -> None:
    """`]` up to threshold 1.00 leaves no galaxy labelled: `v` says why and how to see them, not "0 galaxies"; where
    the votes asked for leave none at any threshold, it says to lower those."""
    from galaxy_tui.app.gallery import GalleryScreen
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        for _ in range(10):
            await pilot.press("right_square_bracket")
        await until(pilot, lambda: "threshold 1.00" in text_of(app, "#labelling"))
        await pilot.press("v")
        await until(pilot, lambda: any("is labelled at threshold 1.00" in n.message
                                       for n in app._notifications))  # noqa: SLF001
        assert "lower the threshold" in next(n.message for n in app._notifications)  # noqa: SLF001
        assert not isinstance(app.screen, GalleryScreen)
        await pilot.press("left_square_bracket", "v")  # one step down: galaxies again, and the gallery opens
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen))
    # where no threshold would label any (more votes asked than any galaxy has), the advice is the votes
    tiny_workspace(tmp_path / "votes", extra={"labels": {"threshold": 0.7, "min_classifications": 1000}})
    app = GalaxyApp(tmp_path / "votes", telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        await pilot.press("v")
        await until(pilot, lambda: any("lower the votes needed with M" in n.message
                                       for n in app._notifications))  # noqa: SLF001
        assert not isinstance(app.screen, GalleryScreen)


async def test_the_gallery_pages_through_a_class_and_opens_a_galaxy_large(tmp_path: Path) -> None:
    from galaxy_tui.app.gallery import GalaxyTile, GalaxyView, GalleryScreen
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await open_gallery(pilot, app)
        gallery = app.screen
        per_page = len(gallery.query(GalaxyTile))
        assert per_page == gallery.per_page >= 8  # 160x48 holds 4 x 2 tiles of at least 32x32 pixels
        assert all(tile.query_one(".gallery-image").size.width >= 32 for tile in gallery.query(GalaxyTile))
        first = gallery.query(GalaxyTile).first().caption
        assert "elliptical" in screen_text(app) and "page 1 of" in screen_text(app)
        await pilot.press("pagedown")
        await until(pilot, lambda: "page 2 of" in screen_text(app))
        assert gallery.query(GalaxyTile).first().caption != first
        await pilot.press("right_square_bracket")  # the next class
        await until(pilot, lambda: "spiral" in screen_text(app) and "page 1 of" in screen_text(app))
        await pilot.press("right", "enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView))
        assert "votes: smooth" in screen_text(app) and f"2 of {len(gallery.members[1])}" in screen_text(app)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: not isinstance(app.screen, (GalleryScreen, GalaxyView)))
        assert app.active_pane == "datasets"


async def test_the_gallery_fits_80x24(tmp_path: Path) -> None:
    from galaxy_tui.app.gallery import GalaxyTile
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_gallery(pilot, app)
        assert all(app.screen.region.contains_region(t.region) for t in app.screen.query(GalaxyTile))
        assert "Escape closes" in screen_text(app)


def test_a_heartbeat_alone_repaints_nothing(tmp_path: Path) -> None:
    """status.json is rewritten every 2 s with a new `updated`: that must not count as a change (it made the
    Monitor redraw its plots every 2 s); a new epoch must."""
    from dataclasses import replace

    from galaxy_tui.app.store import RunStore
    from galaxy_tui.runs import RunInfo
    store = RunStore(tmp_path)
    info = RunInfo("r1", tmp_path / "r1", "demo", "training", epoch=1, epochs=8, started=1.0, updated=2.0)
    store.apply_scan([info])
    versions = store.version, store.runs_version
    store.apply_scan([replace(info, updated=4.0)])
    assert (store.version, store.runs_version) == versions and store.records["r1"].info.updated == 4.0
    store.apply_scan([replace(info, updated=6.0, step=40)])  # the Monitor shows steps; the list does not
    assert store.version > versions[0] and store.runs_version == versions[1]
    store.apply_scan([replace(info, updated=8.0, epoch=2)])
    assert store.runs_version > versions[1]


async def test_dataset_thumbnails_grow_with_the_pane(tmp_path: Path) -> None:
    from galaxy_tui.app.thumbs import ThumbnailStrip
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "tiny")
        await pilot.pause()
        strip = app.query_one(ThumbnailStrip)

        def area() -> int:
            return sum(t.query_one(".thumb-image").size.area for t in strip.visible())
        small = area()
        await pilot.resize_terminal(220, 60)
        await until(pilot, lambda: area() > small)  # larger galaxies, or more of them side by side
        grown = app.query(".thumb-image").first().size
        assert grown.height == grown.width // 2  # square galaxies: two pixel rows per cell


async def test_a_resize_while_thumbnail_rows_mount_does_not_crash(tmp_path: Path) -> None:
    """What crashed the app under load: fitting the thumbnails (after a resize) while a new row was in the DOM
    without its children yet. Simulated by mounting an empty row, as mount_all leaves it for a moment."""
    from textual.containers import Horizontal

    from galaxy_tui.app.thumbs import ThumbnailStrip
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(ThumbnailStrip)
        await until(pilot, lambda: strip.shown == "tiny")
        await strip.mount(Horizontal(classes="thumb-row"))
        strip.fit_images()
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert app.is_running and app.query(".thumb-image").first().size.width > 0


async def test_enter_on_a_dataset_sample_opens_it_large_and_the_arrows_step(tmp_path: Path) -> None:
    from galaxy_tui.app.gallery import GalaxyView
    from galaxy_tui.app.thumbs import Thumbnail, ThumbnailStrip
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "tiny")
        assert "Enter opens one large" in screen_text(app)
        await pilot.press("tab")
        await until(pilot, lambda: isinstance(app.focused, Thumbnail))
        first = app.focused
        await pilot.press("down")  # the next class's sample (one a class beside the runs list: 48+ cells wide)
        chosen = app.focused
        assert isinstance(chosen, Thumbnail) and chosen.class_name != first.class_name
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView))
        shown = app.query_one(ThumbnailStrip).visible()
        assert f"{shown.index(chosen) + 1} of {len(shown)}" in screen_text(app)
        dataset = app.query_one("#datasets-pane").loaded["tiny"]
        assert str(dataset.frame["id"].iloc[chosen.row]) in screen_text(app) and "votes: smooth" in screen_text(app)
        await pilot.press("right")
        await until(pilot, lambda: f"{shown.index(chosen) + 2} of {len(shown)}" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, GalaxyView))
        assert app.focused is chosen


async def test_labelling_keys_are_off_for_a_fixed_label_dataset_and_say_why(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from galaxy_tui.registry import update_registry
    registry = tiny_workspace(tmp_path)
    for name in ("elliptical", "spiral"):
        (tmp_path / "folders" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / "folders" / name / f"{i}.png")
    update_registry(registry.path, lambda raw: (
        raw["datasets"].__setitem__("folders", {"kind": "image-folder", "path": "folders"}),
        raw["experiments"].__setitem__("on-folders", {"dataset": "folders", "labels": {"threshold": 0.7}})))
    before = registry.path.read_text()
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one("#datasets-pane")
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        assert pane.check_action("threshold", (0.01,)) is True
        await pilot.press("down")  # the image folder
        await until(pilot, lambda: "fixed labels" in text_of(app, "#labelling"))
        assert pane.check_action("threshold", (0.01,)) is None and pane.check_action("gallery", ()) is True
        await pilot.press("plus", "right_square_bracket", "m", "a")
        await pilot.press("ctrl+p")  # asked for by name in the palette: refused, and said why
        await pilot.pause()
        await pilot.press(*"Threshold", "space", *"+0.05")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: any("labelling keys do not apply" in n.message
                                       for n in app._notifications))  # noqa: SLF001 - a toast wraps its text
        await pilot.pause(1.0)  # past the save delay
        assert pane.labelling.threshold == 0.7 and registry.path.read_text() == before


async def test_a_pane_key_closes_the_runs_list_that_stood_in_its_place(tmp_path: Path) -> None:
    from fixture_runs import fixture_workspace
    app = GalaxyApp(fixture_workspace(tmp_path / "ws"), telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 2)
        await pilot.press("r")
        await until(pilot, lambda: app.query_one("#runs-panel").display and not app.query_one("#panes").display)
        await pilot.press("4")
        await until(pilot, lambda: app.query_one("#panes").display and not app.query_one("#runs-panel").display)
        assert app.active_pane == "results"


async def test_the_monitor_counts_an_epoch_the_events_already_tell(tmp_path: Path) -> None:
    """status.json (the 2 s heartbeat) may still say epoch 2 when the events have the end of epoch 3: the header
    said "epoch 2/8" beside "step 1/19 of epoch 4" and a val curve reaching epoch 3."""
    import json

    from fixture_runs import FrozenTelemetry, add_live_run, fixture_workspace
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)  # status.json: epoch 2 of 8
    with open(workspace / "runs" / live / "events.jsonl", "a") as events:
        for epoch in (1, 2, 3):
            events.write(json.dumps({"t": 1.0, "type": "epoch", "epoch": epoch, "train_loss": 0.5, "val_loss": 0.4,
                                     "val_acc": 0.8, "seconds": 10.0, "step": 19 * epoch}) + "\n")
        events.write(json.dumps({"t": 2.0, "type": "step", "epoch": 4, "step": 58, "loss": 0.3, "lr": 0.003,
                                 "samples_per_s": 600.0, "step_in_epoch": 1, "steps_per_epoch": 19}) + "\n")
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.panes_ready)
        await until(pilot, lambda: "step 1/19 of epoch 4" in text_of(app, "#monitor-header"))
        assert "epoch 3/8" in text_of(app, "#monitor-header")


async def test_a_resumed_run_starting_shows_no_step_or_eta_of_its_previous_attempt(tmp_path: Path) -> None:
    import json

    from fixture_runs import FrozenTelemetry, add_live_run, fixture_workspace
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)
    run = workspace / "runs" / live
    with open(run / "events.jsonl", "a") as events:  # attempt 1 trained a while, then stopped
        events.write(json.dumps({"t": 1.0, "type": "epoch", "epoch": 1, "train_loss": 0.5, "val_loss": 0.4,
                                 "val_acc": 0.8, "seconds": 10.0, "step": 19}) + "\n")
        events.write(json.dumps({"t": 2.0, "type": "step", "epoch": 2, "step": 25, "loss": 0.3, "lr": 0.003,
                                 "samples_per_s": 600.0, "step_in_epoch": 6, "steps_per_epoch": 19}) + "\n")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "queued", "attempt": 2}))  # attempt 2 starts
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.panes_ready)
        await until(pilot, lambda: "starting the worker" in text_of(app, "#monitor-header"))
        header = text_of(app, "#monitor-header")
        assert "step 6/19" not in header and "ETA" not in header, header


async def test_the_monitor_plots_keep_their_rows_at_80x24(tmp_path: Path) -> None:
    """At 80x24 the plots were 3 rows tall with the legend over the curves: the log tail gives its rows, the
    legend moves to the title, and at a roomy size both come back."""
    from fixture_runs import fixture_workspace
    from pilot_helpers import region_text
    app = GalaxyApp(fixture_workspace(tmp_path), telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 2)
        await pilot.press("3", "r")
        await until(pilot, lambda: app.query_one("#runs-table").row_count == 2)
        await pilot.press("enter")  # the finished run (the newest, under the cursor) on the Monitor
        await until(pilot, lambda: "val" in region_text(app, app.query_one("#loss-plot")))
        lines = region_text(app, app.query_one("#loss-plot")).splitlines()
        frame = [i for i, line in enumerate(lines) if "┌" in line or "└" in line]
        assert frame[1] - frame[0] - 1 >= 6  # rows of curves
        assert "train" in lines[0] and not any("train" in line for line in lines[1:])  # the legend is the title
        assert not app.query_one("#log-tail").display
        await pilot.resize_terminal(160, 48)
        await until(pilot, lambda: app.query_one("#log-tail").display
                    and "train" in "".join(region_text(app, app.query_one("#loss-plot")).splitlines()[1:]))


async def test_the_form_scrolls_to_an_error_and_says_what_the_focused_field_takes(tmp_path: Path) -> None:
    """At 80x24 a refused value far down the form is scrolled into sight; every placeholder is whole in its
    input; the focused field's experiments.toml key and what it takes are said under the form."""
    from textual.widgets import Input
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_experiment_form(pilot, "e")
        form = app.screen
        await pilot.pause(0.2)
        for control in form.query(Input):
            assert len(str(control.placeholder)) <= control.size.width, (control.id, control.placeholder)
        form.query_one("#f-seed").value = "seven"
        await pilot.press("ctrl+s")
        error = form.query_one("#error-f-seed")
        body = form.query_one("#form-body")
        await until(pilot, lambda: error.display and body.region.contains_region(error.region))
        assert "'seven' is not a whole number" in text_of(app, "#error-f-seed")
        form.query_one("#f-finetune").focus()
        await until(pilot, lambda: "finetune in experiments.toml" in text_of(app, "#form-help"))
        assert "head alone" in text_of(app, "#form-help")
        form.query_one("#f-optimizer-lr").focus()
        await until(pilot, lambda: "optimizer.lr in experiments.toml · a number" in text_of(app, "#form-help"))


async def test_the_form_shows_a_long_dataset_name_whole_at_80x24(tmp_path: Path) -> None:
    from pilot_helpers import region_text
    registry = tiny_workspace(tmp_path)
    long_name = "training-solutions-rev1-decals"
    text = registry.path.read_text().replace("[datasets.tiny]", f"[datasets.{long_name}]\nkind = \"synthetic\"\n"
                                             "count = 60\n\n[datasets.tiny]")
    registry.path.write_text(text)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_experiment_form(pilot, "n")
        app.screen.query_one("#f-dataset").value = long_name
        await pilot.pause(0.2)
        assert long_name in region_text(app, app.screen.query_one("#f-dataset"))


async def test_searching_calibration_finds_the_key_by_that_name(tmp_path: Path) -> None:
    """A classification run's `a` tab is Calibration: the palette and help say so, not only "Answers"."""
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"calib")
        await until(pilot, lambda: "Calibration/answers" in screen_text(app))
        await pilot.press("escape", "4", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and "Calibration/answers" in screen_text(app))


async def test_a_key_typed_right_after_a_pane_key_reaches_the_new_pane(tmp_path: Path) -> None:
    """`4c` arriving in one read (tmux send-keys, a fast typist): the c was the Experiments pane's (clone) because
    the focus moved later. Both keys are queued before either is handled, as the terminal's reader does."""
    from textual import events
    from textual.widgets import TabbedContent

    from fixture_runs import fixture_workspace
    app = GalaxyApp(fixture_workspace(tmp_path), telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.panes_ready and len(app.store.records) == 2)
        await pilot.press("2")
        await until(pilot, lambda: app.focused is app.query_one("#experiments-table"))
        app.post_message(events.Key("4", "4"))
        app.post_message(events.Key("c", "c"))
        await until(pilot, lambda: app.query_one("#results-tabs", TabbedContent).active == "tab-compare")
        assert not isinstance(app.screen, ExperimentForm)


def test_a_long_path_keeps_its_end() -> None:
    from galaxy_tui.app.fields import fit_path
    assert fit_path("/work/shared/realdata/gz1_small", 30) == "…/shared/realdata/gz1_small"
    assert fit_path("/work/shared/realdata/gz1_small", 12) == "…/gz1_small"
    assert fit_path("/data/gz1_small", 30) == "/data/gz1_small"
    assert fit_path("built-in (3000 galaxies, 64px, seed 0)", 20) == "built-in (3000 galaxies, 64px, seed 0)"


async def test_the_dataset_path_is_never_cut_mid_word_at_80x24(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image
    folder = tmp_path / "a-rather-long-folder-name" / "gz1_small_walkthrough"
    for name in ("elliptical", "spiral"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(folder / name / f"{i}.png")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "experiments.toml").write_text(f'[datasets.walk]\nkind = "image-folder"\npath = "{folder}"\n')
    app = GalaxyApp(tmp_path / "ws", telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "gz1_small_walkthrough" in text_of(app, "#dataset-info"))
        shown = text_of(app, "#dataset-info").splitlines()[0]
        assert shown.startswith("…/") and shown.endswith("/gz1_small_walkthrough")
        assert len(shown) <= app.query_one("#dataset-info").size.width
