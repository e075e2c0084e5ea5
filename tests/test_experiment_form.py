"""The experiment form covers every key an experiment has; clone and delete from the Experiments pane."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from galaxy_tui.app.dialogs import ChoiceDialog
from galaxy_tui.app.experiment_form import FIELDS, ExperimentForm
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.records.config_diff import flatten
from galaxy_tui.registry import Experiment, Finetune, load_registry
from pilot_helpers import NoGpu, open_experiment_form, screen_text, text_of, until
from workspace_fixture import tiny_workspace


def test_the_form_has_a_field_for_every_key_of_an_experiment() -> None:
    """Optional keys included (a finetune recipe is one field: "1, 2, 0.75")."""
    every = Experiment(name="x", dataset="d", weights="w.safetensors", finetune=Finetune(), views=8).table()
    keys = {key.split(".")[0] if key.startswith("finetune.") else key for key in flatten(every)}
    assert {field.key for field in FIELDS} == keys


async def test_a_finetune_recipe_and_weights_file_are_typed_checked_and_cleared(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, extra={"model": "zoobot:convnext_nano"})
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await open_experiment_form(pilot, "e")
        form = app.screen
        form.query_one("#f-weights").value = "weights/nano.safetensors"
        form.query_one("#f-finetune").value = "2, 3"  # epochs = 2: no epoch would be left for the blocks
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "leaves no epoch" in screen_text(app))
        assert isinstance(app.screen, ExperimentForm)
        form.query_one("#f-finetune").value = "1, all, 0.5"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
        saved = load_registry(registry.path).experiments["tiny"]
        assert saved.finetune == Finetune(1, -1, 0.5) and saved.weights == "weights/nano.safetensors"
        await open_experiment_form(pilot, "e")
        assert app.screen.query_one("#f-finetune").value == "1, all, 0.5"
        app.screen.query_one("#f-finetune").value = ""
        app.screen.query_one("#f-weights").value = ""
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
    cleared = load_registry(registry.path)
    assert cleared.experiments["tiny"].finetune is None and "finetune" not in cleared.raw["experiments"]["tiny"]
    assert "weights" not in cleared.raw["experiments"]["tiny"]


async def test_clone_starts_from_the_selected_experiment(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await open_experiment_form(pilot, "c")
        form = app.screen
        assert form.query_one("#f-name").value == "tiny-copy"
        await until(pilot, lambda: "Clone experiment" in screen_text(app))
        form.query_one("#f-optimizer-lr").value = "1e-4"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
    saved = load_registry(registry.path).experiments
    original, clone = saved["tiny"], saved["tiny-copy"]
    assert clone.lr == 1e-4 and original.lr == 3e-3
    assert (clone.image_size, clone.epochs, clone.micro_batch, clone.labels) == \
        (original.image_size, original.epochs, original.micro_batch, original.labels)


async def test_deleting_an_experiment_asks_and_keeps_its_runs(tmp_path: Path) -> None:
    import json
    registry = tiny_workspace(tmp_path)
    run = tmp_path / "runs" / "tiny-20261202-120000"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"experiment": "tiny", "state": "finished", "epoch": 2, "epochs": 2}))
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        table = app.query_one("#experiments-table", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await until(pilot, lambda: "1 run folder(s) stay" in screen_text(app))
        await pilot.press("n")
        assert "tiny" in load_registry(registry.path).experiments
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 0)
    assert "tiny" not in load_registry(registry.path).experiments and run.is_dir()


async def test_views_are_typed_in_the_form_and_a_blank_means_one(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        for typed, expected in (("8", 8), ("3", None), ("", 1)):
            await open_experiment_form(pilot, "e")
            form = app.screen
            form.query_one("#f-views").value = typed
            await pilot.press("ctrl+s")
            if expected is None:  # refused under its field, nothing written
                await until(pilot, lambda: "is not one of 1, 4, 8, 16" in text_of(app, "#error-f-views"))
                await pilot.press("escape")
                assert load_registry(registry.path).experiment("tiny").views == 8
                continue
            await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
            assert load_registry(registry.path).experiment("tiny").views == expected
    assert "views" not in (tmp_path / "experiments.toml").read_text()  # blank: the key is gone, as its default
