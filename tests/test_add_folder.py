"""Adding an image folder as a person does: Tab completes the path, the classes are proposed (GZ1's two
spiral folders merged, its "don't know" left out) and decided before anything is written."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from galaxy_tui.app.folder_classes import FolderClassesDialog, FolderPlan
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.path_input import complete_path
from galaxy_tui.registry import load_registry
from pilot_helpers import NoGpu, screen_text, until
from workspace_fixture import tiny_workspace

GZ1_FOLDERS = ("0_elliptical", "1_spiral_clockwise", "2_spiral_anticlockwise", "3_edge_on", "4_dont_know")


def gz1_like(root: Path) -> None:
    for k, folder in enumerate(GZ1_FOLDERS):
        (root / folder).mkdir(parents=True)
        for i in range(k + 2):
            Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(root / folder / f"{i}.jpg")


def test_tab_completion_of_paths(tmp_path: Path) -> None:
    (tmp_path / "gz1_small").mkdir()
    (tmp_path / "gz2.csv").write_text("")
    (tmp_path / "galaxy10.h5").write_text("")
    (tmp_path / ".hidden").mkdir()
    assert complete_path("gz1", tmp_path) == ("gz1_small/", ["gz1_small/"])
    assert complete_path("g", tmp_path) == ("g", ["galaxy10.h5", "gz1_small/", "gz2.csv"])
    assert complete_path("gz", tmp_path) == ("gz", ["gz1_small/", "gz2.csv"])
    assert complete_path("", tmp_path)[1] == ["galaxy10.h5", "gz1_small/", "gz2.csv"]  # no hidden files
    assert complete_path(f"{tmp_path}/gala", Path("/")) == (f"{tmp_path}/galaxy10.h5", ["galaxy10.h5"])
    assert complete_path("nowhere/x", tmp_path) == ("nowhere/x", [])


def test_the_proposal_merges_shared_first_words_and_leaves_out_unsure_answers() -> None:
    plan = FolderPlan.proposed({folder: 3 for folder in GZ1_FOLDERS})
    assert plan.table_options() == {"exclude": ["4_dont_know"],
                                    "merge": {"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"]}}
    plan.classes["3_edge_on"] = "edgeon"
    plan.excluded.clear()
    assert plan.table_options()["merge"] == {"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"],
                                             "edgeon": ["3_edge_on"]}


async def test_adding_a_gz1_folder_with_tab_and_the_class_dialog(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    gz1_like(tmp_path / "surveys" / "gz1_small")
    (tmp_path / "data").symlink_to(tmp_path / "surveys")
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *"da", "tab")  # data/ (a symlink: kept as typed)
        field = app.screen.query_one("#dialog-input")
        await until(pilot, lambda: field.value == "data/")
        await pilot.press(*"gz", "tab")
        await until(pilot, lambda: field.value == "data/gz1_small/")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FolderClassesDialog))
        # elliptical, spiral (2 folders), edge_on; "don't know" left out
        await until(pilot, lambda: "left out" in screen_text(app) and "3 classes from 4 folders" in screen_text(app))
        await pilot.press("down", "down", "down", "space")  # leave out 3_edge_on too ...
        await until(pilot, lambda: "2 classes from 3 folders" in screen_text(app))
        await pilot.press("space")  # ... no: keep it
        await until(pilot, lambda: "3 classes from 4 folders" in screen_text(app))
        await pilot.press("m")
        app.screen.query_one("#dialog-input").value = "edge-on"
        await pilot.press("enter")
        await until(pilot, lambda: "edge-on" in screen_text(app))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "gz1-small" in load_registry(registry.path).datasets)
    spec = load_registry(registry.path).datasets["gz1-small"]
    assert spec.options["path"] == "data/gz1_small"  # as typed, the symlink not resolved
    assert spec.options["exclude"] == ["4_dont_know"]
    assert spec.options["merge"] == {"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"],
                                     "edge-on": ["3_edge_on"]}
    from galaxy_tui.data.sources import load_dataset
    dataset = load_dataset(spec)
    assert dataset.classes == ("elliptical", "spiral", "edge-on") and len(dataset.frame) == 2 + 3 + 4 + 5
