"""The run's event stream: one JSON object per line, appended; read incrementally.

Stdlib only: the worker, the supervisor and the UI all share it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]

FINAL_STATES = ("finished", "stopped", "failed", "killed")
LIVE_STATES = ("queued", "preparing", "probing", "training", "evaluating")


def _encode(kind: str, fields: dict[str, Any]) -> tuple[Event, bytes]:
    event: Event = {"t": round(time.time(), 3), "type": kind, **fields}
    return event, (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode("utf-8")


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
            if isinstance(event, dict) and "type" in event:
                events.append(event)
            else:
                self.skipped_lines += 1
        return events


def read_events(path: Path) -> list[Event]:
    """Every whole event in the file (for replay and reports)."""
    tail = EventTail(path)
    events: list[Event] = []
    while True:
        before = tail.offset
        events.extend(tail.read_new())
        if tail.offset == before:
            return events
