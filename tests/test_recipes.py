"""The recipes: each one written into a workspace's experiments.toml (comments kept, targets said), then each of its
experiments — model, views, task, loss, sampler, schedule as the recipe has them — trained for a step on stand-in
data written here in the recipe's real format (Galaxy10's .h5, GalaxyMNIST's two .hdf5, the Hart16 table with its
mapping and JPEGs, Kaggle's solutions CSV and JPEGs). Only the sizes are made small: image size, epochs, steps and
batches; and the Zoobot encoder starts from random weights (nothing is downloaded here; loading its published
weights from the Hugging Face cache is tests/test_encoders.py's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import hart16_row
from galaxy_tui.data.kaggle_gz2 import TARGET_COLUMNS
from galaxy_tui.errors import GalaxyError
from galaxy_tui.recipes.catalogue import RECIPES
from galaxy_tui.recipes.writing import write_recipe
from galaxy_tui.registry import ensure_registry, load_registry, update_registry
from galaxy_tui.runs import launch
from workspace_fixture import wait_final

GALAXIES = 48


def noise_jpeg(path: Path, seed: int, size: int = 32) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def standin_galaxy10(folder: Path) -> dict[str, Any]:
    path = folder / "Galaxy10_DECals.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 255, (GALAXIES, 32, 32, 3), dtype=np.uint8)
        f["ans"] = np.arange(GALAXIES) % 10
    return {"path": str(path)}


def standin_galaxy_mnist(folder: Path) -> dict[str, Any]:
    paths = {}
    for part, count in (("train", GALAXIES), ("test", 12)):
        paths[part] = folder / f"{part}_dataset.hdf5"
        with h5py.File(paths[part], "w") as f:
            f["images"] = np.random.default_rng(count).integers(0, 255, (count, 32, 32, 3), dtype=np.uint8)
            f["labels"] = (np.arange(count) % 4).astype(np.uint8)
    return {"train": str(paths["train"]), "test": str(paths["test"])}


def standin_gz2(folder: Path) -> dict[str, Any]:
    kinds = [(0.9, 0.08, 0.1, 0.1), (0.05, 0.93, 0.05, 0.9), (0.05, 0.93, 0.95, 0.1)]  # elliptical, spiral, edge-on
    rows = [hart16_row(1000 + i, smooth, disk, 0.02, yes, spiral)
            for i, (smooth, disk, yes, spiral) in enumerate(kinds[i % 3] for i in range(GALAXIES))]
    pd.DataFrame(rows).to_csv(folder / "gz2_hart16.csv", index=False)
    pd.DataFrame({"objid": [r["dr7objid"] for r in rows], "sample": "original",
                  "asset_id": range(1, GALAXIES + 1)}).to_csv(folder / "gz2_filename_mapping.csv", index=False)
    (folder / "images").mkdir()
    for asset in range(1, GALAXIES + 1):
        noise_jpeg(folder / "images" / f"{asset}.jpg", asset)
    return {"catalog": str(folder / "gz2_hart16.csv"), "mapping": str(folder / "gz2_filename_mapping.csv"),
            "images": str(folder / "images")}


def standin_kaggle(folder: Path) -> dict[str, Any]:
    rows = []
    for i in range(GALAXIES):
        smooth = 0.9 if i % 2 else 0.1
        values = dict.fromkeys(TARGET_COLUMNS, 0.0)
        values["Class1.1"], values["Class1.2"], values["Class1.3"] = smooth, 0.98 - smooth, 0.02
        values["Class2.1"], values["Class2.2"] = 0.1 * (0.98 - smooth), 0.9 * (0.98 - smooth)
        rows.append({"GalaxyID": 100000 + i, **values})
    pd.DataFrame(rows).to_csv(folder / "training_solutions_rev1.csv", index=False)
    (folder / "images").mkdir()
    for row in rows:
        noise_jpeg(folder / "images" / f"{row['GalaxyID']}.jpg", row["GalaxyID"], 48)
    return {"solutions": str(folder / "training_solutions_rev1.csv"), "images": str(folder / "images")}


STANDINS = {"galaxy10-h5": standin_galaxy10, "galaxy-mnist-h5": standin_galaxy_mnist, "gz2-hart16": standin_gz2,
            "kaggle-gz2": standin_kaggle}
SMALL = {"image_size": 32, "epochs": 1, "max_steps_per_epoch": 1, "micro_batch": 4, "effective_batch": 8,
         "mistakes": 0, "early_stopping": 0, "split": [0.6, 0.2, 0.2]}


def test_a_recipe_is_written_with_its_targets_and_the_user_s_file_is_kept(tmp_path: Path) -> None:
    ensure_registry(tmp_path)
    path = tmp_path / "experiments.toml"
    path.write_text("# my notes about this workspace\n" + path.read_text())
    written = write_recipe(path, RECIPES["gz2-resnet18"])
    text = path.read_text()
    assert text.startswith("# my notes about this workspace") and "[experiments.demo-tiny]" in text
    assert "93.18% test accuracy" in text and "GPU time: about 15 minutes" in text and "Hart et al. (2016)" in text
    experiment = load_registry(path).experiment("gz2-resnet18")
    assert (experiment.model, experiment.image_size, experiment.lr, experiment.effective_batch) == \
        ("resnet18", 224, 3e-4, 256)
    assert written.dataset_added and written.experiments == ("gz2-resnet18",)
    with pytest.raises(GalaxyError, match="exist already; nothing was written"):
        write_recipe(path, RECIPES["gz2-resnet18"])
    again = write_recipe(path, RECIPES["gz2-resnet18"], prefix="mine-")
    assert again.experiments == ("mine-gz2-resnet18",) and not again.dataset_added  # the dataset is shared
    update_registry(path, lambda raw: raw["datasets"].__setitem__("galaxy-mnist", {"kind": "synthetic"}))
    before = path.read_text()
    with pytest.raises(GalaxyError, match="'synthetic' dataset"):
        write_recipe(path, RECIPES["galaxy-mnist-zoobot"])
    assert path.read_text() == before


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_s_experiments_train_a_step_on_stand_in_data_in_its_format(name: str, tmp_path: Path,
                                                                               cpu_ranks: None) -> None:
    recipe = RECIPES[name]
    ensure_registry(tmp_path)
    path = tmp_path / "experiments.toml"
    write_recipe(path, recipe)
    data = tmp_path / "standin"
    data.mkdir()
    files = STANDINS[recipe.dataset.table["kind"]](data)

    def small(raw: dict[str, Any]) -> None:
        raw["datasets"][recipe.dataset.name].update(files)
        for experiment in recipe.experiments:
            table = raw["experiments"][experiment.name]
            table.update(SMALL)
            if "finetune" in table:  # head-only epochs, then every block: one step each side of the unfreeze
                table["epochs"] = table["finetune"]["frozen_epochs"] + 1
            if table.get("pretrained") and str(table["model"]).startswith("zoobot:"):
                table["pretrained"] = False  # nothing downloads here
    registry = update_registry(path, small)
    runs = [launch(registry, experiment.name) for experiment in recipe.experiments]  # side by side, detached
    for run in runs:
        final = wait_final(run, timeout=600)
        assert final.state == "finished", (run.dir / "worker.log").read_text()[-3000:]


async def test_n_in_the_experiments_pane_writes_a_chosen_recipe(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from galaxy_tui.app.dialogs import ChoiceDialog
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.app.recipe_dialog import RecipeDialog
    from pilot_helpers import NoGpu, screen_text, until
    ensure_registry(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        table = app.query_one("#experiments-table", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RecipeDialog))
        await until(pilot, lambda: "93.18% test accuracy" in screen_text(app))
        await pilot.press("down", "down", "enter")  # the third: galaxy10-cnn
        await until(pilot, lambda: table.row_count == 3)
        assert str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) == "galaxy10-cnn"
    written = load_registry(tmp_path / "experiments.toml")
    assert written.experiment("galaxy10-cnn").model == "galaxy10-cnn"
    assert written.dataset("galaxy10-decals").kind == "galaxy10-h5"
    assert "84% validation accuracy" in (tmp_path / "experiments.toml").read_text()
