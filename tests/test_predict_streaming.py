"""`predict` in chunks: each chunk's rows on disk as soon as they are known, and an interrupted predict asked
again continuing after the last chunk written, with a CSV identical to one made in one go."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.atomic import read_json
from galaxy_tui.inference.galaxy_sources import dataset_items
from galaxy_tui.inference.servable import load_run
from galaxy_tui.inference.streaming import partial_files, predict_streaming
from galaxy_tui.registry import load_registry


class Interrupt:
    """Progress that stops the predict (as Ctrl-C would) once `after` galaxies are done."""

    def __init__(self, after: int):
        self.after = after

    def __call__(self, done: int, _total: int) -> None:
        if done >= self.after:
            raise KeyboardInterrupt


def test_an_interrupted_predict_continues_where_it_stopped(demo_run, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = demo_run
    items = dataset_items(load_registry(root / "experiments.toml"), "tiny", run, unlabelled=False)
    loaded = load_run(run.dir)
    whole = tmp_path / "whole.csv"
    predict_streaming(loaded, items, whole, 32, False, True, lambda *_: None, chunk=64)
    out = tmp_path / "cut.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_streaming(loaded, items, out, 32, False, True, Interrupt(150), chunk=64)
    csv_part, note, _features, _skipped = partial_files(out)
    assert not out.exists() and read_json(note)["done"] == 128  # two whole chunks noted
    assert len(pd.read_csv(csv_part)) >= 128
    with open(csv_part, "a") as handle:  # a chunk cut short after its rows, before its note
        handle.write("syn-half-written,1,2\n")
    again = predict_streaming(loaded, items, out, 32, False, True, lambda *_: None, chunk=64)
    assert again.resumed_at == 128 and again.classified == len(items) == 400
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(whole))
    np.testing.assert_array_equal(np.load(out.with_suffix(".features.npy")),
                                  np.load(whole.with_suffix(".features.npy")))
    assert not csv_part.exists() and not note.exists()
    other = tmp_path / "other.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_streaming(loaded, items, other, 32, False, False, Interrupt(70), chunk=64)
    changed = predict_streaming(loaded, items, other, 32, True, False, lambda *_: None, chunk=64)
    assert changed.resumed_at == 0  # other options (TTA): nothing of the interrupted predict is reused


def test_predict_a_whole_dataset_from_the_cli(demo_run, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = demo_run
    out = tmp_path / "all.csv"
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "predict", run.id,
                           "--dataset", "tiny", "--all", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out)) == 400 and "400" in done.stdout
    assert not any(path.name.endswith((".partial", ".progress.json")) for path in tmp_path.iterdir())
