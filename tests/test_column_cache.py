"""Parsed catalogue columns are reused while the CSV is unchanged, and never change what is read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.data import column_cache
from galaxy_tui.data.catalog import read_csv
from galaxy_tui.data.gz2 import load_gz2_hart16
from galaxy_tui.data.kaggle_gz2 import load_kaggle_gz2
from galaxy_tui.errors import GalaxyError


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "n": [1, 2, 3], "x": [0.5, np.nan, 0.25], "skip": [9, 9, 9]}) \
        .to_csv(path, index=False)
    return path


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = pd.read_csv

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003
        if kwargs.get("nrows") != 0:
            calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(pd, "read_csv", counted)
    return calls


def test_second_read_comes_from_the_cache_and_is_identical(table: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    parses = count_parses(monkeypatch)
    first = read_csv(table, "T", ["x", "id", "n"], numeric=["x"], cache_dir=tmp_path / "cache")
    second = read_csv(table, "T", ["x", "id", "n"], numeric=["x"], cache_dir=tmp_path / "cache")
    assert len(parses) == 1
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, read_csv(table, "T", ["x", "id", "n"], numeric=["x"]))
    assert list(first.columns) == ["x", "id", "n"]


def test_an_edited_file_is_parsed_again(table: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    read_csv(table, "T", ["id", "n"], cache_dir=cache)
    pd.DataFrame({"id": ["z"], "n": [42]}).to_csv(table, index=False)
    os.utime(table, ns=(1, 1))  # even with an old mtime: the size changed
    assert read_csv(table, "T", ["id", "n"], cache_dir=cache)["n"].tolist() == [42]
    assert len(list((cache / "columns").iterdir())) == 1  # the entry was replaced, not added to


def test_a_damaged_entry_is_a_miss_and_is_rewritten(table: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    expected = read_csv(table, "T", ["id", "x"], cache_dir=cache)
    entry = column_cache.entry_path(cache, table, ["id", "x"])
    entry.write_bytes(entry.read_bytes()[:50])
    pd.testing.assert_frame_equal(read_csv(table, "T", ["id", "x"], cache_dir=cache), expected)
    with np.load(entry) as stored:  # whole again
        assert list(stored["columns"]) == ["id", "x"]


def test_bad_numbers_are_still_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,x\na,0.5\nb,lots\n")
    for _ in range(2):
        with pytest.raises(GalaxyError, match="line 3"):
            read_csv(path, "T", ["id", "x"], numeric=["x"], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "columns").exists()


def test_text_with_gaps_is_not_cached_but_still_read(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("id,name\n1,a\n2,\n")
    frame = read_csv(path, "T", ["id", "name"], cache_dir=tmp_path / "cache")
    assert frame["name"].isna().tolist() == [False, True]
    assert not (tmp_path / "cache" / "columns").exists()


def test_a_cache_folder_that_refuses_writes_costs_only_speed(table: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated (root writes anywhere): the entry's write fails as on a read-only file system."""
    def refuse(path: Path, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(column_cache, "atomic_write_bytes", refuse)
    for _ in range(2):
        assert read_csv(table, "T", ["id"], cache_dir=tmp_path / "cache")["id"].tolist() == ["a", "b", "c"]


def test_gz2_and_kaggle_loaders_give_the_same_dataset_cold_and_warm(gz2_files: dict[str, Path],
                                                                    kaggle_files: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for load in (lambda c: load_gz2_hart16("gz2", **gz2_files, cache_dir=c),
                 lambda c: load_kaggle_gz2("k", **kaggle_files, cache_dir=c)):
        plain, cold, warm = load(None), load(cache), load(cache)
        pd.testing.assert_frame_equal(plain.frame, cold.frame)
        pd.testing.assert_frame_equal(plain.frame, warm.frame)
        assert plain.fingerprint == warm.fingerprint
    assert len(list((cache / "columns").iterdir())) == 3  # GZ2 catalogue + mapping, Kaggle solutions
