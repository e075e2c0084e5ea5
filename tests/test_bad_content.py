"""Damaged or unexpected content in the files the program reads: events, status, catalogues. Each is
skipped, counted or named — never a traceback, never one bad file hiding the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.data.kaggle_gz2 import TARGET_COLUMNS, load_kaggle_gz2
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import append_event, read_events, read_events_counted
from galaxy_tui.registry import load_registry
from galaxy_tui.run_model import RunModel
from galaxy_tui.runs import find_runs
from workspace_fixture import tiny_workspace


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def _run_folder(runs: Path, name: str, status: dict, events: list[str]) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    atomic_write_json(run / "status.json", status)
    (run / "events.jsonl").write_text("".join(line + "\n" for line in events))
    (run / "config.toml").write_text('[run]\nexperiment = "tiny"\n')
    return run


def test_events_of_the_wrong_shape_are_skipped_and_counted(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    good_epoch = '{"t":1,"type":"epoch","epoch":1,"step":3,"train_loss":0.5,"val_loss":0.4,"val_acc":0.9,"seconds":1}'
    run = _run_folder(tmp_path / "runs", "tiny-1", {"experiment": "tiny", "state": "finished", "attempt": 1},
                      ['{"t":1,"type":"epoch","epoch":"x"}', '{"t":1,"type":"step","step":1}', "[1,2]",
                       good_epoch, '{"t":1,"type":"finished"}'])
    events, skipped = read_events_counted(run / "events.jsonl")
    assert skipped == 3 and [e["type"] for e in events] == ["epoch", "finished"]
    model = RunModel()
    model.apply(events)
    assert model.epoch_series("epoch", "val_acc") == ([1], [0.9])
    shown = cli(tmp_path, "show", "tiny-1")
    assert shown.returncode == 0 and "3 line(s) of events.jsonl could not be read" in shown.stdout, shown.stderr


def test_a_damaged_status_does_not_break_the_listing_of_every_run(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    _run_folder(tmp_path / "runs", "tiny-a", {"experiment": "tiny", "state": "finished", "epoch": None,
                                              "best_metric": "high", "started": "yesterday"}, [])
    _run_folder(tmp_path / "runs", "tiny-b", {"experiment": "tiny", "state": "finished", "epoch": 2,
                                              "epochs": 2, "best_metric": 0.9, "started": 5.0}, [])
    (tmp_path / "runs" / "tiny-c").mkdir()
    (tmp_path / "runs" / "tiny-c" / "status.json").write_text("{not json")
    runs = {r.id: r for r in find_runs(registry)}
    assert runs["tiny-a"].epoch == 0 and runs["tiny-a"].best_metric is None
    assert runs["tiny-b"].best_metric == 0.9
    assert runs["tiny-c"].state == "lost"  # nothing vouches for it
    listing = cli(tmp_path, "runs")
    assert listing.returncode == 0 and all(name in listing.stdout for name in ("tiny-a", "tiny-b", "tiny-c"))


def test_nan_is_written_as_null_so_every_file_stays_json(tmp_path: Path) -> None:
    append_event(tmp_path / "events.jsonl", "epoch", epoch=1, step=0, train_loss=float("nan"), val_loss=0.5,
                 val_acc=0.5, seconds=1.0)
    atomic_write_json(tmp_path / "metrics.json", {"loss": float("inf"), "per_class": {"a": float("nan")}})
    line = (tmp_path / "events.jsonl").read_text()
    assert "NaN" not in line and json.loads(line)["train_loss"] is None
    assert read_events(tmp_path / "events.jsonl")[0]["train_loss"] is None
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": None, "per_class": {"a": None}}


def _kaggle(tmp_path: Path, bad: str | None) -> Path:
    folder = tmp_path / "kaggle"
    (folder / "images").mkdir(parents=True)
    rows = [{"GalaxyID": 100 + i, **{c: 0.1 for c in TARGET_COLUMNS}} for i in range(5)]
    frame = pd.DataFrame(rows)
    if bad is not None:
        frame["Class1.2"] = frame["Class1.2"].astype(object)
        frame.loc[3, "Class1.2"] = bad
    frame.to_csv(folder / "training_solutions_rev1.csv", index=False)
    return folder


def test_a_word_in_a_number_column_is_named_by_file_column_and_line(tmp_path: Path) -> None:
    folder = _kaggle(tmp_path, "abc")
    with pytest.raises(GalaxyError, match=r"column Class1.2, line 5 holds 'abc', not a number"):
        load_kaggle_gz2("k", folder / "training_solutions_rev1.csv", folder / "images")


def test_one_bad_catalogue_does_not_hide_the_other_datasets(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    folder = _kaggle(tmp_path, "abc")
    text = registry.path.read_text() + (f'\n[datasets.kaggle]\nkind = "kaggle-gz2"\nsolutions = '
                                        f'"{folder}/training_solutions_rev1.csv"\nimages = "{folder}/images"\n')
    registry.path.write_text(text)
    load_registry(registry.path)
    listed = cli(tmp_path, "datasets")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert "tiny" in listed.stdout and "line 5 holds 'abc'" in listed.stdout.replace("\n", " ")


def test_detecting_a_binary_csv_says_so(tmp_path: Path) -> None:
    from galaxy_tui.data.detect import detect_dataset
    path = tmp_path / "weird.csv"
    path.write_bytes(b"\xff\xfe\x00\x01binary\x00\x00\xc3\x28")
    with pytest.raises(GalaxyError, match="could not be read as a CSV table"):
        detect_dataset(path, tmp_path)


def test_a_resumed_follow_sums_up_earlier_attempts_in_one_line() -> None:
    from galaxy_tui.watch import earlier_attempts
    events = [{"type": "started", "attempt": 1}, {"type": "epoch", "epoch": 3}, {"type": "killed"},
              {"type": "started", "attempt": 2}, {"type": "epoch", "epoch": 5}, {"type": "stopped"}]
    assert earlier_attempts(events) == "earlier attempts: #1 killed (epoch 3), #2 stopped (epoch 5)"
    assert earlier_attempts([]) == ""


def test_runs_prints_whole_ids_one_a_line_for_scripts(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    long_id = "tiny-" + "x" * 90
    _run_folder(tmp_path / "runs", long_id, {"experiment": "tiny", "state": "finished", "started": 1.0}, [])
    listing = cli(tmp_path, "runs")  # stdout is a pipe here, as in a script
    lines = listing.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["run", "experiment", "state"]
    assert lines[1].split("\t")[:3] == [long_id, "tiny", "finished"]


def test_a_launch_that_cannot_write_says_where_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a full disk when the launcher creates the run folder."""
    import errno

    from galaxy_tui import runs
    from galaxy_tui.runs import launch
    registry = tiny_workspace(tmp_path)

    def full(runs_dir: Path, experiment: str) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(runs_dir / "tiny-1"))

    monkeypatch.setattr(runs, "new_run_dir", full)
    with pytest.raises(GalaxyError, match="no space left on .*runs to start the run"):
        launch(registry, "tiny")
