"""The run's event stream: one JSON object per line, appended; read incrementally.

Stdlib only: the worker, the supervisor and the UI all share it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_tui.atomic import finite

Event = dict[str, Any]

FINAL_STATES = ("finished", "stopped", "failed", "killed")
LIVE_STATES = ("submitted", "pending", "queued", "preparing", "probing", "training", "evaluating", "predicting",
               "fetching")
AGAIN_MODES = ("evaluate", "boost", "curate")  # jobs on a trained run: stopping one leaves the run as it was


def _encode(kind: str, fields: dict[str, Any]) -> tuple[Event, bytes]:
    event: Event = {"t": round(time.time(), 3), "type": kind, **finite(fields)}
    return event, (json.dumps(event, separators=(",", ":"), default=str, allow_nan=False) + "\n").encode("utf-8")


_INT, _NUM, _OPT_NUM, _BOOL = "int", "number", "number or null", "bool"
# What readers rely on, per event type; a line that breaks it is skipped and counted, never a crash.
SCHEMA: dict[str, dict[str, str]] = {
    "step": {"epoch": _INT, "step": _INT, "loss": _NUM},
    "epoch": {"epoch": _INT, "step": _INT, "train_loss": _OPT_NUM, "val_loss": _OPT_NUM, "val_acc": _OPT_NUM,
              "seconds": _NUM},
    "prepare": {"done": _INT, "total": _INT},
    "probe_trial": {"micro_batch": _INT, "budget_bytes": _INT, "peak_bytes": _OPT_NUM, "fits": _BOOL},
    "probe_done": {"micro_batch": _INT, "accumulation": _INT, "effective_batch": _INT},
    "oom": {"step": _INT, "micro_batch_before": _INT, "micro_batch_after": _INT, "accumulation": _INT},
    "resumed": {"epoch": _INT, "step": _INT},
    "gpu": {"index": _INT},
    "host": {"cpu_percent": _NUM, "rss_bytes": _INT},
}


def _fits(value: Any, kind: str) -> bool:
    if kind == _BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    if value is None:
        return kind == _OPT_NUM
    return isinstance(value, (int, float)) and math.isfinite(value)


def well_formed(event: Any) -> bool:
    """An object with a string `type` whose fields have the types readers rely on."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return False
    return all(_fits(event.get(key), kind) for key, kind in SCHEMA.get(event["type"], {}).items())


def append_event(path: Path, kind: str, /, **fields: Any) -> Event:
    """Append one event as a single write of one whole line, so readers never see half of two."""
    writer = EventWriter(path)
    try:
        return writer.emit(kind, **fields)
    finally:
        writer.close()


class EventWriter:
    """Appends events to one file, keeping it open (the worker's hot path)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, kind: str, /, **fields: Any) -> Event:
        event, line = _encode(kind, fields)
        os.write(self._fd, line)
        return event

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class EventTail:
    """Reads only what was appended since the last call; keeps a half-written last line for later."""

    path: Path
    offset: int = 0
    skipped_lines: int = 0
    _partial: bytes = field(default=b"", repr=False)

    def read_new(self, max_bytes: int = 8 << 20) -> list[Event]:
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # the file was replaced: start again
                    self.offset, self._partial = 0, b""
                handle.seek(self.offset)
                chunk = handle.read(max_bytes)
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                self.skipped_lines += 1
                continue
            if well_formed(event):
                events.append(event)
            else:
                self.skipped_lines += 1
        return events


def read_events(path: Path) -> list[Event]:
    """Every whole, well-formed event in the file (for replay and reports)."""
    return read_events_counted(path)[0]


def read_events_counted(path: Path) -> tuple[list[Event], int]:
    """Every whole, well-formed event, and how many lines were skipped as unreadable."""
    tail = EventTail(path)
    events: list[Event] = []
    while True:
        before = tail.offset
        events.extend(tail.read_new())
        if tail.offset == before:
            return events, tail.skipped_lines
