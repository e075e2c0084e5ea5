"""Write a file so a reader sees the old or the new content, never a mix (temp, fsync, rename)."""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def _umask() -> int:
    """The process umask, read without changing it (os.umask sets it, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write(path: Path, write: Callable[[BinaryIO], Any], sweep: bool = False) -> None:
    """`write` fills a temp file beside `path`; it is fsynced and renamed over `path` only when complete.
    A symlink is written through (its target is replaced, the link stays); the file keeps its mode,
    and a new file gets the usual 0666 less the umask, not mkstemp's private 0600.
    `sweep` first removes leftovers of a writer killed mid-write (only for files with one writer)."""
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file() and not path.is_dir():  # a device or a pipe (/dev/stdout): written
        with open(path, "wb") as handle:                            # through, never replaced by a file
            write(handle)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    if sweep:
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file: name the target
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def finite(value: Any) -> Any:
    """NaN and infinity become null: JSON has no spelling for them (`NaN` is not JSON; jq refuses it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def atomic_write_json(path: Path, value: Any, in_place_fallback: bool = False) -> None:
    """`in_place_fallback`: when the folder refuses the temp file (read-only folder, writable file), write
    the file in place instead — not atomic, but the state reaches its readers (for status.json, whose
    readers survive a torn read), rather than a run that reads as `lost` with its reason nowhere."""
    data = json.dumps(finite(value), indent=1, default=str, allow_nan=False).encode("utf-8")
    try:
        atomic_write_bytes(path, data)
    except OSError:
        if not in_place_fallback or not path.exists():
            raise
        with open(path, "r+b") as handle:
            handle.truncate(0)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None if it is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` + ".lock", held for the block (between processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
