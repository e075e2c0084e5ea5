"""The Datasets pane's samples are always the selected dataset's galaxies, chosen by the labelling on screen:
through adding a dataset, moving between datasets and changing the labelling, in the order a person would."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.panes.datasets import DatasetsPane
from galaxy_tui.app.thumbs import Thumbnail, ThumbnailStrip
from pilot_helpers import NoGpu, until
from workspace_fixture import tiny_workspace


def samples_settled(app: GalaxyApp) -> bool:
    """The strip shows the selected dataset at the pane's labelling (checked whole below)."""
    pane, strip = app.query_one(DatasetsPane), app.query_one(ThumbnailStrip)
    return pane.selected in pane.loaded and strip.shown == pane.selected and \
        strip.shown_labelling == pane.labelling and bool(strip.query(Thumbnail))


def assert_samples_belong(app: GalaxyApp) -> None:
    pane, strip = app.query_one(DatasetsPane), app.query_one(ThumbnailStrip)
    dataset = pane.loaded[pane.selected]
    labels = dataset.labels(pane.labelling)
    thumbs = list(strip.query(Thumbnail))
    assert thumbs
    for thumb in thumbs:
        assert 0 <= thumb.row < len(dataset.frame)
        assert labels[thumb.row] >= 0 and dataset.classes[labels[thumb.row]] == thumb.class_name, \
            (pane.selected, thumb.row, thumb.class_name)


async def test_the_samples_follow_the_dataset_the_labelling_and_the_dialogs(tmp_path: Path,
                                                                          galaxy10_h5: Path) -> None:
    tiny_workspace(tmp_path / "ws", count=300)
    app = GalaxyApp(tmp_path / "ws", telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DatasetsPane)
        await until(pilot, lambda: samples_settled(app))
        assert pane.selected == "tiny"
        assert_samples_belong(app)
        await pilot.press("n", *str(galaxy10_h5), "enter")  # add a dataset: it becomes the selected one
        await until(pilot, lambda: pane.selected == "galaxy10-decals" and samples_settled(app))
        assert_samples_belong(app)
        assert app.focused is app.query_one("#datasets-table", DataTable)  # the arrows move in the list
        await pilot.press("up")
        await until(pilot, lambda: pane.selected == "tiny" and samples_settled(app))
        assert_samples_belong(app)
        before = pane.labelling
        for key in ("plus", "plus", "right_square_bracket", "minus"):  # threshold up, up, +0.05, down
            await pilot.press(key)
            await until(pilot, lambda: samples_settled(app))
            assert_samples_belong(app)
        assert pane.labelling != before
        await pilot.press("down")  # back to the added dataset, whose labels are fixed
        await until(pilot, lambda: pane.selected == "galaxy10-decals" and samples_settled(app))
        assert_samples_belong(app)
        await pilot.press("up")
        await until(pilot, lambda: pane.selected == "tiny" and samples_settled(app))
        assert_samples_belong(app)


def test_a_question_the_volunteers_never_reached_shows_a_dash_not_nan() -> None:
    from galaxy_tui.app.gallery import vote_line
    line = vote_line(0.9, 0.1, float("nan"), float("nan"), 23)
    assert "nan" not in line and line == "votes: smooth 0.90  disk 0.10  edge-on —  spiral —  (23 volunteers)"
