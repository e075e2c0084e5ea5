"""Remembered class counts: drawn at the next start before the catalogue is read, and only while they can
still be true (same files, same labelling); the loaded dataset's counts always replace them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from galaxy_tui.app.main import GalaxyApp
from galaxy_tui.data import sources
from galaxy_tui.data.count_memo import MEMO_FILE, remember_counts, remembered_counts
from galaxy_tui.registry import DatasetSpec, Labelling
from pilot_helpers import NoGpu, text_of, until
from workspace_fixture import tiny_workspace


def csv_spec(tmp_path: Path) -> DatasetSpec:
    (tmp_path / "votes.csv").write_text("id,a\n1,0.5\n")
    (tmp_path / "images" / "spiral").mkdir(parents=True)
    return DatasetSpec("cat", "kaggle-gz2", {"solutions": "votes.csv", "images": "images"}, tmp_path)


def test_counts_are_remembered_for_the_same_files_and_labelling(tmp_path: Path) -> None:
    spec, cache = csv_spec(tmp_path), tmp_path / "cache"
    remember_counts(cache, spec, Labelling(), 10, {"smooth": 6, "disk": 4})
    assert remembered_counts(cache, spec, Labelling()) == (10, {"smooth": 6, "disk": 4})
    assert remembered_counts(cache, spec, Labelling(threshold=0.9)) is None


@pytest.mark.parametrize("change", ["catalogue rewritten", "image added to a class folder", "option changed"])
def test_remembered_counts_are_forgotten_when_the_dataset_changes(tmp_path: Path, change: str) -> None:
    spec, cache = csv_spec(tmp_path), tmp_path / "cache"
    remember_counts(cache, spec, Labelling(), 10, {"smooth": 6, "disk": 4})
    if change == "catalogue rewritten":
        (tmp_path / "votes.csv").write_text("id,a\n1,0.5\n2,0.7\n")
    elif change == "image added to a class folder":
        spiral = tmp_path / "images" / "spiral"
        (spiral / "new.jpg").write_bytes(b"x")
        os.utime(spiral, ns=(1, 1))  # a folder's mtime moves with its entries; pinned so the test does not race it
    else:
        spec = DatasetSpec("cat", "kaggle-gz2", {**spec.options, "solutions": "other.csv"}, tmp_path)
    assert remembered_counts(cache, spec, Labelling()) is None


def test_a_torn_memo_file_is_no_memo(tmp_path: Path) -> None:
    spec, cache = csv_spec(tmp_path), tmp_path / "cache"
    cache.mkdir()
    (cache / MEMO_FILE).write_text('{"cat": {"signature": ')
    assert remembered_counts(cache, spec, Labelling()) is None
    remember_counts(cache, spec, Labelling(), 1, {"smooth": 1})  # and writing over it works
    assert remembered_counts(cache, spec, Labelling()) == (1, {"smooth": 1})


async def test_the_next_start_draws_the_counts_before_the_catalogue_is_read(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_workspace(tmp_path)
    first = GalaxyApp(tmp_path, telemetry=NoGpu(), read_runs=False)
    async with first.run_test(size=(120, 40)) as pilot:
        pane = first.query_one("#datasets-pane")
        await until(pilot, lambda: "tiny" in pane.loaded and "total" in text_of(first, "#counts"))
        counts = text_of(first, "#counts")

    release, real_load = threading.Event(), sources.load_dataset

    def slow_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the catalogue takes its time
        release.wait(30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(sources, "load_dataset", slow_load)
    second = GalaxyApp(tmp_path, telemetry=NoGpu(), read_runs=False)
    async with second.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "total" in text_of(second, "#counts"))
        pane = second.query_one("#datasets-pane")
        assert not pane.loaded and text_of(second, "#counts") == counts
        release.set()
        await until(pilot, lambda: "tiny" in pane.loaded)
        assert text_of(second, "#counts") == counts
