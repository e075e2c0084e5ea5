"""Parsed catalogue columns kept as .npz beside the image cache, keyed by the CSV's signature.

Parsing the needed columns of a 240,000-row GZ2 table takes most of a second every time the app or a
worker opens the dataset; loading the same columns from an uncompressed .npz takes a few milliseconds.
One file per (CSV, column set): it records the CSV's size and mtime, so an edited CSV is parsed again
and its entry replaced. The cache only ever speeds things up: an unreadable, stale or foreign entry is
a miss, and a cache folder that cannot be written just means parsing next time too.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import atomic_write_bytes

_FORMAT = "galaxy-tui columns 1"


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(repr, parts)).encode()).hexdigest()[:16]


def _signature(path: Path) -> str:
    stat = path.stat()
    return f"{_FORMAT}:{stat.st_size}:{stat.st_mtime_ns}"


def entry_path(cache_dir: Path, source: Path, columns: Sequence[str]) -> Path:
    return cache_dir / "columns" / f"{_digest(str(source.resolve()))}-{_digest(*columns)}.npz"


def cached_columns(source: Path, columns: Sequence[str], cache_dir: Path | None,
                   parse: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """`parse()`'s frame (whose columns are `columns`), from the cache when `source` is unchanged."""
    if cache_dir is None:
        return parse()
    entry = entry_path(cache_dir, source, columns)
    signature = _signature(source)
    frame = _load(entry, signature, columns)
    if frame is None:
        frame = parse()
        _store(entry, signature, frame)
    return frame


def _load(entry: Path, signature: str, columns: Sequence[str]) -> pd.DataFrame | None:
    try:
        with np.load(entry, allow_pickle=False) as stored:
            if str(stored["signature"]) != signature or list(stored["columns"]) != list(columns):
                return None
            dtypes = [str(d) for d in stored["dtypes"]]
            return pd.DataFrame({name: pd.Series(stored[f"c{i}"], dtype=dtypes[i], copy=False)
                                 for i, name in enumerate(columns)})
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _storable(values: pd.Series) -> np.ndarray | None:
    """The column as a plain numpy array numpy can save without pickle, or None (e.g. text with gaps)."""
    if values.dtype.kind in "biuf":
        return values.to_numpy()
    if values.isna().any():
        return None
    text = values.to_numpy(dtype=object)
    if not all(isinstance(v, str) for v in text):
        return None
    return text.astype(str)


def _store(entry: Path, signature: str, frame: pd.DataFrame) -> None:
    arrays = {f"c{i}": _storable(frame[name]) for i, name in enumerate(frame.columns)}
    if any(array is None for array in arrays.values()):
        return
    buffer = io.BytesIO()
    np.savez(buffer, signature=np.array(signature), columns=np.array([str(c) for c in frame.columns]),
             dtypes=np.array([str(frame[c].dtype) for c in frame.columns]), **arrays)
    try:
        atomic_write_bytes(entry, buffer.getvalue())
    except OSError:
        pass  # a read-only or full cache folder costs a parse next time, nothing else
