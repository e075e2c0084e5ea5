"""The workbench as a person uses it, through Textual's Pilot: keys in, screen state out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable

from galaxy_tui.app.dialogs import ChoiceDialog, HelpScreen
from galaxy_tui.app.gallery import GalaxyView
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.panes.mistakes_grid import MAX_ACROSS, MistakeCell
from galaxy_tui.app.thumbs import ThumbnailStrip, tile_layout
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import launch
from galaxy_tui.telemetry import Reading
from pilot_helpers import NoGpu, open_experiment_form, screen_text, text_of, until
from workspace_fixture import tiny_workspace, wait_final


async def test_threshold_keys_move_the_counts_and_save_the_registry(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        before = app.query_one("#datasets-pane").loaded["tiny"].counts(registry.experiments["tiny"].labels)
        await pilot.press("plus", "plus", "right_square_bracket")
        await until(pilot, lambda: load_registry(registry.path).experiments["tiny"].labels.threshold == 0.77)
        after = load_registry(registry.path).experiments["tiny"].labels
        counts = app.query_one("#datasets-pane").loaded["tiny"].counts(after)
        assert sum(counts.values()) < sum(before.values())
        assert str(sum(counts.values())) in text_of(app, "#counts")
        await pilot.press("t")
        await pilot.press(*"0.93", "enter")  # the current value is selected: typing replaces it
        await until(pilot, lambda: load_registry(registry.path).experiments["tiny"].labels.threshold == 0.93)
        await pilot.press("t", *"0.3", "enter")  # out of range: refused, nothing saved
        await pilot.pause(0.3)
        assert load_registry(registry.path).experiments["tiny"].labels.threshold == 0.93


async def test_threshold_keys_save_once_the_keys_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from galaxy_tui.app.panes import datasets
    saves: list[float] = []
    real = datasets.set_labelling
    monkeypatch.setattr(datasets, "set_labelling", lambda path, name, lab: saves.append(lab.threshold) or
                        real(path, name, lab))
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        # the thumbnails render in a thread once the dataset loads: wait, so no key waits for the GIL
        await until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "tiny")
        await pilot.press(*["plus"] * 6)
        assert "0.76" in text_of(app, "#labelling")  # the counts and values follow at once
        await until(pilot, lambda: saves, timeout=5)
        await pilot.pause(0.8)
        assert saves == [0.76] and load_registry(registry.path).experiments["tiny"].labels.threshold == 0.76


async def test_a_key_pressed_just_before_quitting_is_saved_without_a_traceback(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The pane's unmount runs after its children are gone (the CI run that met it): the save must not need them.
    The pause before a save is made long here, so a slow machine still quits with the save pending."""
    import galaxy_tui.app.panes.datasets as datasets_pane
    monkeypatch.setattr(datasets_pane, "SAVE_AFTER_S", 30.0)
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "total" in text_of(app, "#counts"))
        await pilot.press("plus")
        assert app.query_one("#datasets-pane")._pending_save is not None  # still waiting for the keys to pause
        for child in list(app.query_one("#datasets-pane").children):
            await child.remove()  # what quitting does first
    assert load_registry(registry.path).experiments["tiny"].labels.threshold == 0.71


async def test_launch_from_the_ui_goes_live_and_shows_results(tmp_path: Path) -> None:
    tiny_workspace(tmp_path, epochs=2)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2", "l")
        await until(pilot, lambda: app.store.current is not None)
        assert app.active_pane == "monitor"
        await until(pilot, lambda: app.store.current.info.state == "finished", timeout=120)
        await until(pilot, lambda: app.store.current.model.epochs and "finished" in text_of(app, "#monitor-header"))
        assert "micro-batch" in text_of(app, "#probe-summary")
        await pilot.press("4")
        await until(pilot, lambda: "test accuracy" in text_of(app, "#results-summary"))
        await until(pilot, lambda: len(app.query(MistakeCell)) > 0 or
                    "no mistakes" in str(app.query_one("#mistakes-grid").children[0].render()))


async def test_existing_checkpoints_offer_resume_restart_skip(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    first = wait_final(launch(registry, "tiny"))
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2", "l")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        labels = [str(b.label) for b in app.screen.query("Button")]
        assert labels == ["Resume (r)", "Restart (t)", "Skip: evaluate best (s)", "Cancel (c)"]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("s")  # Skip: evaluate the best checkpoint in the same run
        await until(pilot, lambda: app.store.selected == first.id and app.store.current.info.attempt == 2)
    final = wait_final(first)
    assert final.state == "finished" and final.attempt == 2


async def test_launching_an_experiment_that_is_running_offers_watch_stop_or_a_new_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It offered Resume / Restart / Skip, and Resume then said "cannot launch: still training"."""
    from fixture_runs import FrozenTelemetry, add_live_run, fixture_workspace
    from galaxy_tui.app.panes import experiments
    workspace = fixture_workspace(tmp_path / "ws")
    live = add_live_run(workspace)  # demo-tiny, training; its "worker" is this test process: not stopped for real
    stopped: list[str] = []
    monkeypatch.setattr(experiments, "stop_run", lambda registry, run_id: stopped.append(run_id))
    app = GalaxyApp(workspace)
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panes_ready and app.store.live_count == 1)
        await pilot.press("2")
        await until(pilot, lambda: app.query_one("#experiments-table", DataTable).row_count >= 1)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        labels = [str(b.label) for b in app.screen.query("Button")]
        assert labels == ["Watch (w)", "Stop it (s)", "New run (n)", "Cancel (c)"]
        assert live in screen_text(app)
        await pilot.press("w")
        await until(pilot, lambda: app.active_pane == "monitor" and app.store.selected == live)
        await pilot.press("2", "l")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("s")
        await until(pilot, lambda: stopped == [live])


async def test_reattach_shows_a_detached_run_with_its_full_history(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=3)
    run = launch(registry, "tiny")   # as `galaxy-tui train --detach` does
    wait_final(run)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.store.current is not None and len(app.store.current.model.epochs) == 3)
        await pilot.press("3")
        await until(pilot, lambda: run.id in text_of(app, "#monitor-header"))
        assert app.store.current.model.started is not None


async def test_bad_toml_is_explained_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "experiments.toml").write_text('[workspace]\nruns_dir = "runs\n')
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert app.registry is None and "line 2, column" in app.registry_error
        assert any("line 2, column" in n.message for n in app._notifications)
        await pilot.press("plus", "minus", "right_square_bracket", "m", "a", "e", "n")  # need a valid registry
        await pilot.press("t")
        await pilot.pause(0.2)
        assert app.is_running and app.registry is None  # no crash: each key says what is wrong
        assert any("fix the file first" in n.message for n in app._notifications)
        (tmp_path / "experiments.toml").write_text('[datasets.demo]\nkind = "synthetic"\n')
        await until(pilot, lambda: app.registry is not None, timeout=10)  # fixed by hand: picked up live
        await until(pilot, lambda: app.query_one("#datasets-table", DataTable).row_count == 1)


async def test_too_small_terminal_says_so(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause(0.2)
        assert app.query_one("#too-small").display and not app.query_one("#body").display


async def test_help_shows_the_focused_pane_keys_and_quit_says_runs_go_on(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = screen_text(app)
        assert "Threshold +0.01" in shown and "Quit" in shown and "Launch" not in shown
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_mistakes_move_with_arrows_and_open_larger(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"mistakes": 8})
    wait_final(launch(registry, "tiny"))
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: "test accuracy" in text_of(app, "#results-summary"))
        await until(pilot, lambda: len(app.query(MistakeCell)) > 1)
        await pilot.press("m")  # the Mistakes tab, focus on the first
        cells = list(app.query(MistakeCell))
        assert app.focused is cells[0]
        await pilot.pause()  # pictures take their column's width (not a fixed 16), and grow with the pane
        grid = app.query_one("#mistakes-grid")
        assert cells[0].query_one(".mistake-image").size.width == tile_layout(grid.size.width, MAX_ACROSS)[1]
        narrow = cells[0].query_one(".mistake-image").size.width
        await pilot.resize_terminal(200, 50)
        await until(pilot, lambda: cells[0].query_one(".mistake-image").size.width > narrow)  # the same tiles
        await pilot.press("right")
        assert app.focused is cells[1]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView))
        assert cells[1].caption.split("\n")[0] in screen_text(app)
        assert f"agreement {float(cells[1].row['votes_agreement']):.2f}" in screen_text(app)  # the votes behind it
        await pilot.press("right")  # the next mistake, in the same view
        await until(pilot, lambda: cells[2].caption.split("\n")[0] in screen_text(app))
        await pilot.press("escape")
        assert not isinstance(app.screen, GalaxyView)
        confidences = [float(c.row["confidence"]) for c in app.query(MistakeCell)]
        assert confidences == sorted(confidences, reverse=True) and "model confidence" in screen_text(app)
        await pilot.press("o")  # each true class's most confident errors together, in the run's class order
        await until(pilot, lambda: "sorted by true class" in screen_text(app))
        classes = app.store.browsed_record.metrics["classes"]
        shown = [(classes.index(c.row["true"]), -float(c.row["confidence"])) for c in app.query(MistakeCell)]
        assert shown == sorted(shown)
        await pilot.press("o")  # the galaxies the volunteers were most split on first
        await until(pilot, lambda: "sorted by volunteer disagreement" in screen_text(app))
        agreements = [float(c.row["votes_agreement"]) for c in app.query(MistakeCell)]
        assert agreements == sorted(agreements) and agreements != [float(c.row["votes_agreement"]) for c in cells]
        await pilot.press("o")
        await until(pilot, lambda: "sorted by model confidence" in screen_text(app))


def test_app_module_keeps_torch_out() -> None:
    import subprocess
    import sys
    code = "import sys; import galaxy_tui.app.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_first_paint_s_modules_keep_pandas_out() -> None:
    """The app and the Datasets pane draw the remembered counts before pandas loads (about 0.3 s): what they
    import at the top must not bring it (the curation view, the gallery's `s`, comes when it is used)."""
    import subprocess
    import sys
    code = ("import sys; import galaxy_tui.app.main, galaxy_tui.app.panes.datasets; "
            "print(sorted(m for m in ('pandas', 'textual_plotext', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.fixture(autouse=True)
def _no_leftover_loops() -> None:
    yield
    asyncio.set_event_loop_policy(None)


async def test_runs_list_is_one_key_away_and_keeps_the_cursor(tmp_path: Path) -> None:
    from fixture_runs import FrozenTelemetry, fixture_workspace
    app = GalaxyApp(fixture_workspace(tmp_path / "ws"))
    app.telemetry = FrozenTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 2)
        assert not app.query_one("#runs-panel").display  # narrow terminal: hidden until asked for
        await pilot.press("r")
        table = app.query_one("#runs-table", DataTable)
        assert app.query_one("#runs-panel").display and app.focused is table and table.row_count == 2
        await pilot.press("down")
        await pilot.pause(1.2)  # the list refreshes meanwhile; the cursor must not jump back
        assert table.cursor_row == 1
        await pilot.press("enter")  # an ended run chosen from the Datasets pane: its Results
        assert app.store.browsed == "demo-tiny-20261101-110000" and app.active_pane == "results"
        await pilot.press("3", "r", "enter")  # the same run chosen on the Monitor: pinned there
        await until(pilot, lambda: "out of memory at step 12" in text_of(app, "#monitor-header"))


async def test_create_and_edit_an_experiment_with_errors_explained_in_place(tmp_path: Path) -> None:
    from galaxy_tui.app.experiment_form import ExperimentForm
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_experiment_form(pilot, "n")
        await pilot.press(*"gz2-resnet18")
        form = app.screen
        form.query_one("#f-epochs").value = "zero"
        form.query_one("#f-optimizer-lr").value = "-1"
        form.query_one("#f-labels-threshold").value = "2"
        form.query_one("#f-split").value = "0.8, 0.2"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ExperimentForm)  # still open: every error shown where it happened, at once
        assert "'zero' is not a whole number" in text_of(app, "#error-f-epochs")
        assert "three fractions" in text_of(app, "#error-f-split")
        assert "2 value(s) to fix" in text_of(app, "#form-error")  # type errors first, then the registry's rules
        form.query_one("#f-epochs").value = "0"
        form.query_one("#f-split").value = "0.8, 0.1, 0.1"
        await pilot.press("ctrl+s")
        assert "= 0 must be positive" in text_of(app, "#error-f-epochs")
        assert "must be positive" in text_of(app, "#error-f-optimizer-lr")
        assert "outside (0.5, 1.0]" in text_of(app, "#error-f-labels-threshold")
        assert "3 value(s) to fix" in text_of(app, "#form-error") and not form.query_one("#error-f-split").display
        assert "gz2-resnet18" not in load_registry(registry.path).experiments  # nothing written meanwhile
        form.query_one("#f-epochs").value = "3"
        form.query_one("#f-optimizer-lr").value = "1e-3"
        form.query_one("#f-labels-threshold").value = "0.85"
        form.query_one("#f-model").value = "resnet18"
        form.query_one("#f-sampler").value = "none"
        form.query_one("#f-augment").value = "no"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
        saved = load_registry(registry.path).experiments["gz2-resnet18"]
        assert (saved.epochs, saved.model, saved.dataset, saved.lr, saved.labels.threshold, saved.sampler,
                saved.augment) == (3, "resnet18", "tiny", 1e-3, 0.85, "none", False)
        table = load_registry(registry.path).raw["experiments"]["gz2-resnet18"]
        assert "tf32" not in table and "seed" not in table  # defaults are not written out
        await until(pilot, lambda: app.query_one("#experiments-table", DataTable).row_count == 2)


async def test_add_a_dataset_by_path_detects_its_kind(tmp_path: Path, galaxy10_h5: Path) -> None:
    registry = tiny_workspace(tmp_path / "ws")
    app = GalaxyApp(tmp_path / "ws", telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", *str(tmp_path / "nothing-here.h5"), "enter")
        await until(pilot, lambda: "does not exist" in text_of(app, "#dataset-info"))
        await pilot.press("n", *str(galaxy10_h5), "enter")
        await until(pilot, lambda: "galaxy10-decals" in load_registry(registry.path).datasets)
        assert load_registry(registry.path).datasets["galaxy10-decals"].kind == "galaxy10-h5"
        await until(pilot, lambda: app.query_one("#datasets-table", DataTable).row_count == 2)


class SharedBoxTelemetry:
    """Simulates NVML on a shared two-GPU box: the fixture run trained on NVML's GPU 1 (its cuda:0);
    GPU 0 belongs to somebody else."""

    def __init__(self) -> None:
        from fixture_runs import FROZEN_GPU_UUID
        from galaxy_tui.telemetry import GpuSample
        gib = 1 << 30
        reading = Reading(True, "", (GpuSample(0, "NVIDIA L4", 20 * gib, 24 * gib, 70.0, 72.0, 99, 80,
                                               uuid="GPU-00000000-1111-2222-3333-444444444444"),
                                     GpuSample(1, "NVIDIA A100", 30 * gib, 40 * gib, 250.0, 400.0, 97, 71,
                                               uuid=FROZEN_GPU_UUID)))
        self.latest, self.history = reading, [reading]

    def start(self) -> SharedBoxTelemetry:
        return self

    def stop(self) -> None:
        pass


async def test_monitor_shows_the_runs_gpu_by_its_cuda_index_and_marks_the_others(tmp_path: Path) -> None:
    from fixture_runs import fixture_workspace
    app = GalaxyApp(fixture_workspace(tmp_path / "ws"))
    app.telemetry = SharedBoxTelemetry()  # type: ignore[assignment]
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 2)
        await pilot.press("3")
        await until(pilot, lambda: "cuda:0" in screen_text(app))
        gauges = screen_text(app).splitlines()
        ours = next(i for i, line in enumerate(gauges) if "cuda:0" in line)
        other = next(i for i, line in enumerate(gauges) if "GPU0" in line)
        assert ours < other and "30.0/40.0G" in gauges[ours]  # NVML's GPU 1, listed first as the run's
        assert "not this run's" in gauges[other]


async def test_the_experiment_form_writes_only_what_was_changed_in_it(tmp_path: Path) -> None:
    """A hand edit made while the form is open survives saving the form."""
    from galaxy_tui.app.experiment_form import ExperimentForm
    registry = tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_experiment_form(pilot, "e")
        text = registry.path.read_text()
        registry.path.write_text("# edited by hand while the form was open\n" + text.replace("mistakes = 4",
                                                                                              "mistakes = 9"))
        app.screen.query_one("#f-epochs").value = "5"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentForm))
    saved = load_registry(registry.path).experiments["tiny"]
    assert (saved.epochs, saved.mistakes) == (5, 9)
    assert registry.path.read_text().startswith("# edited by hand while the form was open\n")

