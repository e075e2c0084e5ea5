"""`predict` over any number of galaxies with steady memory: the items go through the model a chunk at a time,
each chunk's rows appended to `OUT.partial` (and its features into `OUT.features.partial.npy`) as soon as they
are known, how far it got noted in `OUT.progress.json`. An interrupted predict (Ctrl-C, a lost SSH session, a
killed process) asked again with the same run, galaxies and options continues after the last chunk written;
the finished CSV is renamed into place, so `OUT` is never a half file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.inference.predicting import Item, predict_items, prediction_table
from galaxy_tui.inference.servable import LoadedRun

CHUNK = 4096


@dataclass(frozen=True)
class Streamed:
    classified: int
    skipped: list[tuple[str, str]]
    resumed_at: int  # items done by an earlier, interrupted predict (0: a fresh start)
    written: list[str]


def partial_files(out: Path) -> tuple[Path, Path, Path, Path]:
    """The CSV being written, its progress note, the features being written and the skipped list."""
    return (out.with_name(out.name + ".partial"), out.with_name(out.name + ".progress.json"),
            out.with_suffix(".features.partial.npy"), out.with_suffix(".skipped.csv"))


def request_key(run_id: str, items: Sequence[Item], options: dict[str, object]) -> str:
    """What an interrupted predict must match to be continued: the run, the galaxies in order, the options."""
    digest = hashlib.sha256(f"{run_id}|{sorted(options.items())}|{len(items)}".encode())
    for item in items:
        digest.update(f"{item.id}\0{item.where}\n".encode())
    return digest.hexdigest()[:20]


def predict_streaming(loaded: LoadedRun, items: Sequence[Item], out: Path, batch: int, tta: bool, features: bool,
                      progress: Callable[[int, int], None], chunk: int = CHUNK) -> Streamed:
    csv_part, note, feature_part, skipped_file = partial_files(out)
    key = request_key(loaded.run_id, items, {"tta": tta, "features": features})
    noted = read_json(note) or {}
    done = int(noted.get("done", 0)) if noted.get("key") == key and csv_part.exists() else 0
    classified = int(noted.get("classified", 0)) if done else 0
    if done:  # rows written after the last note (a chunk cut short) are dropped: that chunk runs again
        _truncate(csv_part, int(noted.get("csv_bytes", 0)))
        _truncate(skipped_file, int(noted.get("skipped_bytes", 0)))
    else:
        for stale in (csv_part, feature_part, skipped_file):
            stale.unlink(missing_ok=True)
    skipped: list[tuple[str, str]] = []
    progress(done, len(items))
    for start in range(done, len(items), chunk):
        part = items[start:start + chunk]
        predicted = predict_items(loaded, part, batch, tta, features,
                                  lambda finished, _total, start=start: progress(start + finished, len(items)))
        frame = prediction_table(loaded, predicted)
        _append_csv(csv_part, frame, header=classified == 0)
        if features and predicted.feature_array is not None:
            _write_features(feature_part, predicted.feature_array, classified, len(items))
        if predicted.skipped:
            _append_csv(skipped_file, pd.DataFrame(predicted.skipped, columns=["path", "why"]),
                        header=not skipped_file.exists())
            skipped += predicted.skipped
        classified += len(frame)
        atomic_write_json(note, {"key": key, "done": start + len(part), "classified": classified,
                                 "items": len(items), "run": loaded.run_id, "csv_bytes": csv_part.stat().st_size,
                                 "skipped_bytes": skipped_file.stat().st_size if skipped_file.exists() else 0})
    written = [str(out)]
    os.replace(csv_part, out)
    if features and feature_part.exists():
        final = out.with_suffix(".features.npy")
        whole = np.load(feature_part, mmap_mode="r")
        np.save(final, whole[:classified])  # the rows of the galaxies classified, as in the CSV
        del whole
        feature_part.unlink()
        written.append(f"{final} (rows as in the CSV)")
    if skipped_file.exists():
        written.append(f"{skipped_file} (the files skipped, with why)")
    note.unlink(missing_ok=True)
    return Streamed(classified, skipped, done, written)


def _truncate(path: Path, size: int) -> None:
    if path.exists():
        with open(path, "r+b") as handle:
            handle.truncate(size)
    if path.exists() and size == 0:
        path.unlink()


def _append_csv(path: Path, frame: pd.DataFrame, header: bool) -> None:
    with open(path, "a", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False, header=header)
        handle.flush()
        os.fsync(handle.fileno())


def _write_features(path: Path, values: np.ndarray, first_row: int, capacity: int) -> None:
    """Rows `first_row`.. of a features file made for `capacity` galaxies (the skipped ones leave rows unused)."""
    if not path.exists():
        np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(capacity, values.shape[1])).flush()
    store = np.lib.format.open_memmap(path, mode="r+")
    store[first_row:first_row + len(values)] = values
    store.flush()
    del store
