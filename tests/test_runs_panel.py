"""The runs list as a person keeps it: tags and notes typed in, a filter that outlives a restart, a config
diff of two marked runs, a metrics export and a delete that asks first."""

from __future__ import annotations

from pathlib import Path

import tomli_w
from textual.widgets import DataTable

from fixture_runs import fixture_workspace
from galaxy_tui.app.dialogs import ChoiceDialog, InputDialog
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.views import ConfigDiffScreen
from galaxy_tui.records.notes import read_notes
from pilot_helpers import NoGpu, region_text, screen_text, text_of, until

FINISHED, FAILED = "demo-tiny-20261101-120000", "demo-tiny-20261101-110000"


def rows(app: GalaxyApp) -> list[str]:
    table = app.query_one("#runs-table", DataTable)
    return [str(key.value) for key in table.rows]


async def open_runs(pilot, app: GalaxyApp) -> None:  # noqa: ANN001
    await until(pilot, lambda: len(app.store.records) == 2)
    await pilot.press("r")
    await until(pilot, lambda: len(rows(app)) == 2)


async def type_into_dialog(pilot, text: str) -> None:  # noqa: ANN001
    await until(pilot, lambda: isinstance(pilot.app.screen, InputDialog))
    pilot.app.screen.query_one("#dialog-input").value = text
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, InputDialog))


async def test_tags_notes_and_a_filter_survive_a_restart(tmp_path: Path) -> None:
    root = fixture_workspace(tmp_path)
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await open_runs(pilot, app)
        assert rows(app)[0] == FINISHED  # newest first: the cursor is on the finished run
        await pilot.press("t")
        await type_into_dialog(pilot, "baseline, adamw")
        await pilot.press("n")
        await type_into_dialog(pilot, "the first honest demo")
        await until(pilot, lambda: "#baseline #adamw" in screen_text(app))
        await until(pilot, lambda: "#adamw  the fi…" in screen_text(app))  # the note under the id too, cut to its width
        assert read_notes(root / "runs" / FINISHED).note == "the first honest demo"
        await pilot.press("slash")
        await pilot.press(*"#baseline")
        await pilot.press("enter")
        await until(pilot, lambda: rows(app) == [FINISHED])
        await until(pilot, lambda: "1 of 2 runs" in screen_text(app))

    again = GalaxyApp(root, telemetry=NoGpu())
    async with again.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: len(again.store.records) == 2)
        await until(pilot, lambda: rows(again) == [FINISHED])  # the filter was kept
        table = again.query_one("#runs-table", DataTable)
        await until(pilot, lambda: "#baseline #adamw" in str(table.get_row(FINISHED)[0]))
        await pilot.press("r", "escape")  # Escape in the list clears the filter
        await until(pilot, lambda: len(rows(again)) == 2)
        await pilot.press("slash")
        await pilot.press(*"acc>>1", "enter")
        await until(pilot, lambda: "not a number" in text_of(again, "#runs-filter-status"))  # said at the field
        assert len(rows(again)) == 2 and again.query_one("#runs-filter").has_focus  # open for the fix


async def test_two_marked_runs_diff_export_and_one_is_deleted_after_asking(tmp_path: Path) -> None:
    root = fixture_workspace(tmp_path)
    for run, lr in ((FINISHED, 3e-4), (FAILED, 1e-3)):
        (root / "runs" / run / "config.toml").write_text(tomli_w.dumps(
            {"run": {"experiment": "demo-tiny"}, "experiment": {"optimizer": {"lr": lr}, "model": "tiny-cnn"}}))
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:  # below 120 columns the list takes the pane's place
        await open_runs(pilot, app)
        await pilot.press("space")  # marks the finished run, moves to the failed one
        await until(pilot, lambda: "●" in screen_text(app))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfigDiffScreen))
        shown = screen_text(app)
        assert "experiment.optimizer.lr" in shown and "0.0003" in shown and "0.001" in shown and "model" not in shown
        await pilot.press("escape")
        await pilot.press("space")  # both marked: the export holds both
        await pilot.press("x")
        await until(pilot, lambda: list((root / "exports").glob("metrics-*.csv")))
        exported = next((root / "exports").glob("metrics-*.csv")).read_text().splitlines()
        assert len(exported) == 1 + 8 + 1  # header, the finished run's 8 epochs, the failed run's one row
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await until(pilot, lambda: FAILED in screen_text(app) and "cannot be undone" in screen_text(app))
        await pilot.press("n")  # keep
        assert (root / "runs" / FAILED).exists()
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("y")
        await until(pilot, lambda: rows(app) == [FINISHED])
        assert not (root / "runs" / FAILED).exists() and app.store.marked == [FINISHED]


async def compare_table(pilot, runs: int, rows: int) -> DataTable:  # noqa: ANN001
    """Results' Compare tab once the app knows `runs` runs and the table shows `rows` of them."""
    await until(pilot, lambda: len(pilot.app.store.records) == runs)
    await pilot.press("4", "c")
    table = pilot.app.query_one("#compare-table", DataTable)
    await until(pilot, lambda: table.row_count == rows)
    return table


async def test_compare_shows_tags_and_notes_and_marks_its_sorted_column(tmp_path: Path) -> None:
    from galaxy_tui.records.notes import write_notes
    root = fixture_workspace(tmp_path)
    write_notes(root / "runs" / FINISHED, ("baseline",), "AdamW, no augmentation")
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        table = await compare_table(pilot, runs=2, rows=1)
        row = [str(cell) for cell in table.get_row(FINISHED)]
        # beside the runs list the pane is 99 wide: the free text narrows (with an ellipsis), the numbers stay whole
        assert row[-2].startswith("#b") and row[-2].endswith("…") and row[-1].startswith("Adam")
        assert row[4:8] == ["0.8", "0.998", "0.9625", "1.6"]
        labels = [str(column.label) for column in table.ordered_columns]
        assert labels[6] == "test ▼" and all("▼" not in label and "▲" not in label for label in labels[:6])
        await pilot.press("o", "o", "o")  # test -> minutes -> tags -> note: names sort ascending
        await until(pilot, lambda: str(table.ordered_columns[-1].label) == "note ▲")


def copy_of_the_finished_run(root: Path) -> str:
    """A second finished run, a quarter of an hour newer than the fixture's."""
    import json
    import shutil
    second = "demo-tiny-20261101-121500"
    shutil.copytree(root / "runs" / FINISHED, root / "runs" / second)
    status = json.loads((root / "runs" / second / "status.json").read_text())
    (root / "runs" / second / "status.json").write_text(json.dumps({**status, "started": status["started"] + 900}))
    return second


async def test_compare_overlays_the_validation_curves_of_the_marked_runs(tmp_path: Path) -> None:
    root = fixture_workspace(tmp_path)
    second = copy_of_the_finished_run(root)
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 3)
        await pilot.press("4", "c")
        plot = app.query_one("#compare-plot")

        def drawn() -> str:
            return region_text(app, plot)

        await until(pilot, lambda: FINISHED in drawn() and second in drawn() and "as sorted" in drawn())
        await pilot.press("r")  # newest first: mark the second copy
        await pilot.press("space")
        await until(pilot, lambda: "the marked runs" in drawn())
        assert second in drawn() and FINISHED not in drawn()


async def test_d_in_compare_diffs_the_shown_run_and_the_one_under_the_cursor(tmp_path: Path) -> None:
    root = fixture_workspace(tmp_path)
    second = copy_of_the_finished_run(root)
    for run, epochs in ((FINISHED, 8), (second, 12)):
        (root / "runs" / run / "config.toml").write_text(tomli_w.dumps(
            {"run": {"experiment": "demo-tiny"}, "experiment": {"epochs": epochs}}))
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.store.records) == 3)
        await pilot.press("4", "c")
        table = app.query_one("#compare-table", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        assert app.store.browsed_record.info.id == second  # Results shows the newest finished run
        table.move_cursor(row=[str(k.value) for k in table.rows].index(FINISHED))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfigDiffScreen))
        await until(pilot, lambda: "experiment.epochs" in screen_text(app) and f"A {second}" in screen_text(app))


async def test_a_finished_run_without_its_config_is_left_out_of_compare_not_fatal(tmp_path: Path) -> None:
    """A damaged folder (config.toml lost) among finished runs: the comparison's thread raised, which closed the
    app (found by bench_ui's 1,000 runs); now that run is left out and the others are compared."""
    root = fixture_workspace(tmp_path)
    second = copy_of_the_finished_run(root)
    (root / "runs" / second / "config.toml").unlink()
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        table = await compare_table(pilot, runs=3, rows=1)
        await pilot.pause(0.3)
        assert app.is_running and [row.value for row in table.rows] == [FINISHED]


async def test_a_run_waiting_in_slurm_s_queue_says_why(tmp_path: Path) -> None:
    """Slurm's reason (what `runs` prints as "pending (Resources)") under the run's id. The scan is one a Slurm
    queue would give (the executor's own tests run a real cluster); here it is applied as the reader would."""
    from dataclasses import replace

    from galaxy_tui.runs import run_info
    root = fixture_workspace(tmp_path)
    app = GalaxyApp(root, telemetry=NoGpu())
    app.reader.start = lambda: None  # type: ignore[union-attr, method-assign]  # the scan comes when the test says
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.panes_ready)
        waiting = replace(run_info(root / "runs" / FAILED), state="pending", reason="Resources")
        app._apply_scan([run_info(root / "runs" / FINISHED), waiting], {})
        await pilot.press("3")  # the live run's Monitor: its log is empty because Slurm has not started it
        await until(pilot, lambda: "waiting for Slurm…" in text_of(app, "#log-tail"))
        await pilot.press("r")
        await until(pilot, lambda: len(rows(app)) == 2)
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        assert "waits: Resources" in region_text(app, table), region_text(app, table)
        assert "waits" not in str(table.get_row(FINISHED)[0])
