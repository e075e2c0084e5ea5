"""The class counts each dataset showed last, kept so the next start draws them before the catalogue is read
(pandas and a CSV parse take longer than the whole first paint). A placeholder only: the Datasets pane
loads the dataset anyway and its own counts replace these within a second. Pure standard library, so
reading it costs the first paint nothing."""

from __future__ import annotations

import hashlib
import os
from dataclasses import astuple
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.registry import DatasetSpec, Labelling

MEMO_FILE = "counts-memo.json"


def source_signature(spec: DatasetSpec) -> str:
    """What the counts depend on: the table and the files it names (size and mtime; a folder also by its
    class folders' mtimes, which change when an image is added or removed)."""
    parts: list[object] = [spec.kind, sorted((key, repr(value)) for key, value in spec.options.items())]
    for key, value in sorted(spec.options.items()):
        if not isinstance(value, str):
            continue
        path = spec.path(key)
        try:
            stat = path.stat()
        except OSError:
            continue
        parts.append((key, stat.st_mtime_ns, stat.st_size))
        if path.is_dir():
            with os.scandir(path) as entries:
                parts.extend(sorted((e.name, e.stat().st_mtime_ns) for e in entries if e.is_dir()))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def remembered_counts(cache_dir: Path, spec: DatasetSpec, labelling: Labelling) -> tuple[int, dict[str, int]] | None:
    """(rows, counts per class) from the last time, if the dataset and the labelling are the same."""
    entry = (read_json(cache_dir / MEMO_FILE) or {}).get(spec.name)
    if not isinstance(entry, dict) or entry.get("signature") != source_signature(spec) or \
            entry.get("labelling") != list(astuple(labelling)):
        return None
    counts = entry.get("counts")
    if not isinstance(counts, dict) or not isinstance(entry.get("rows"), int):
        return None
    return entry["rows"], {str(name): int(n) for name, n in counts.items()}


def remember_counts(cache_dir: Path, spec: DatasetSpec, labelling: Labelling, rows: int,
                    counts: dict[str, int]) -> None:
    path = cache_dir / MEMO_FILE
    memo = read_json(path) or {}
    entry = {"signature": source_signature(spec), "labelling": list(astuple(labelling)), "rows": rows,
             "counts": counts}
    if memo.get(spec.name) == entry:
        return
    memo[spec.name] = entry
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, memo)
    except OSError:
        pass  # a read-only cache only costs the next start its early counts
