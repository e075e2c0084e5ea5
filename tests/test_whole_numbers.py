"""No number cut silently: at 80x24, 100x30 and 160x48, every number-looking word on screen in the Datasets,
Experiments, runs list, Compare and probe tables is one of the table's own values, whole (a column too wide for
the box gives way and the header `+N→` says so; a DataTable left to itself shows `0.` for 0.9750)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fixture_runs import fixture_workspace
from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.app.whole_table import WholeTable, fitting_columns, squeezed_widths
from pilot_helpers import NoGpu, region_text, until

NUMBER = re.compile(r"^[-+]?\d[\d.,]*%?$|^\.\d")
SIZES = [(80, 24), (100, 30), (160, 48)]
FINISHED = "demo-tiny-20261101-120000"  # fixture_runs: the finished run, with its probe trials


def cut_numbers(app: GalaxyApp, table: WholeTable) -> list[str]:
    """The number-looking words of the table's cells on screen that are not whole words of its data."""
    whole = {word for row in table.data_rows for cell in row.cells for word in str(cell).split()}
    shown = region_text(app, table).split()
    assert shown, f"#{table.id} shows nothing"
    return [word for word in shown if NUMBER.match(word) and word not in whole]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_number_on_screen_is_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    root = fixture_workspace(tmp_path)
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=size) as pilot:
        datasets = app.query_one("#datasets-table", WholeTable)
        await until(pilot, lambda: datasets.data_rows and datasets.data_rows[0].cells[2] == "600")
        await pilot.pause(0.2)
        assert cut_numbers(app, datasets) == []

        await pilot.press("2")
        experiments = app.query_one("#experiments-table", WholeTable)
        await until(pilot, lambda: experiments.row_count == 1)
        await pilot.pause(0.2)
        assert cut_numbers(app, experiments) == []
        if size[0] == 80:  # the experiment's 14 columns do not fit 80 cells: the last give way, and say so
            assert experiments.hidden_columns > 0 and f"+{experiments.hidden_columns}→" in region_text(app, experiments)

        await until(pilot, lambda: len(app.store.records) == 2)
        await pilot.press("3", "r")  # on the Monitor, the runs list: Enter pins the finished run there
        runs = app.query_one("#runs-table", WholeTable)
        await until(pilot, lambda: runs.row_count == 2)
        runs.move_cursor(row=[row.key for row in runs.data_rows].index(FINISHED))
        await pilot.pause(0.2)
        assert cut_numbers(app, runs) == []
        await pilot.press("enter")
        probe = app.query_one("#probe-table", WholeTable)
        await until(pilot, lambda: probe.row_count >= 3)
        await pilot.pause(0.2)
        assert cut_numbers(app, probe) == []

        await pilot.press("4", "c")
        compare = app.query_one("#compare-table", WholeTable)
        await until(pilot, lambda: compare.row_count == 1)
        await pilot.pause(0.2)
        assert cut_numbers(app, compare) == []


def test_columns_give_way_whole_and_text_narrows_first() -> None:
    assert fitting_columns([5, 5, 5], 21, 1) == 3  # 3 x (5 + 2) = 21: all fit
    assert fitting_columns([5, 5, 5], 20, 1) == 2  # the third does not: two columns, then the "+1→" mark (3 + 2)
    assert fitting_columns([5, 5, 5], 18, 1) == 1
    assert fitting_columns([5, 5, 5], 0, 1) == 3  # before layout: all of them
    # the widest text (a 22-cell note) narrows first, then all text down to 5; the number keeps its 4
    assert squeezed_widths([4, 22, 9], [False, True, True], 30, 1) == [4, 11, 9]
    assert squeezed_widths([4, 22, 9], [False, True, True], 10, 1) == [4, 5, 5]


async def test_a_new_figure_in_a_row_updates_it_in_place_and_keeps_a_key_pressed_meanwhile() -> None:
    """The runs list gets new figures twice a second while a run trains: they must not rebuild the table under
    a person's Down keys (a rebuild resets the cursor; it lost a key under load)."""
    from textual import events
    from textual.app import App, ComposeResult

    from galaxy_tui.app.whole_table import Row

    class One(App):
        def compose(self) -> ComposeResult:
            yield WholeTable(cursor_type="row")

    app = One()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(WholeTable)
        table.set_columns(("run", "epoch"))
        table.set_rows([Row(f"r{i}", (f"r{i}", "1/8")) for i in range(4)])
        table.focus()
        await pilot.press("down")
        assert table.cursor_row == 1
        app.post_message(events.Key("down", None))
        table.set_rows([Row(f"r{i}", (f"r{i}", "2/8")) for i in range(4)])  # a scan lands between the keys
        app.post_message(events.Key("down", None))
        await pilot.pause(0.2)
        assert table.cursor_row == 3 and str(table.get_cell("r0", "epoch")) == "2/8"
