"""Checkpoints: atomic (temp, fsync, rename), loaded with weights_only=True, refused if from another config."""

from __future__ import annotations

import errno
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch

from galaxy_tui.atomic import atomic_write
from galaxy_tui.errors import GalaxyError

_LOW_SPACE_BYTES = 64 << 20


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """A crash or kill at any moment leaves either the old file or the new one, never a torn one.
    A full disk or a folder that cannot be written is a GalaxyError that says so; the previous
    checkpoint stays in place."""
    try:
        atomic_write(path, lambda handle: torch.save(state, handle), sweep=True)  # rank 0 is the only writer
    except (OSError, RuntimeError) as exc:
        raise GalaxyError(_write_failure(path, exc)) from None


def _write_failure(path: Path, exc: BaseException) -> str:
    # torch reports a failed write as a RuntimeError ("... file write failed"), without the errno
    code = exc.errno if isinstance(exc, OSError) else None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    kept = " The previous checkpoint is kept." if path.exists() else ""
    if code in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < _LOW_SPACE_BYTES):
        return f"no space left on {path.parent} to write {path.name}; free some space and resume.{kept}"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {exc.strerror} (check the folder's permissions); then resume.{kept}"
    if isinstance(exc, RuntimeError):
        raise exc  # not a storage problem: a bug, keep the traceback
    return f"cannot write {path}: {exc.strerror or exc}.{kept}"


def load_checkpoint(path: Path, config_hash: str) -> dict[str, Any]:
    if not path.exists():
        raise GalaxyError(f"no checkpoint at {path}; train the experiment first (or --restart).")
    if path.stat().st_size == 0:
        raise GalaxyError(f"checkpoint {path} is empty (0 bytes): it is damaged; use --restart.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # weights_only names the global it refused; anything else is damage
            reason = _first_line(exc)[:120]
            raise GalaxyError(f"checkpoint {path} cannot be read: it is damaged ({reason}); use --restart.") from None
        # weights_only refused an object no checkpoint of ours holds: never load it any other way
        raise GalaxyError(f"{path} is not a checkpoint this program wrote (it holds objects other than "
                          f"tensors and plain values), so it was not loaded. Remove it, or use --restart.") from None
    except Exception as exc:  # a damaged file: torch raises several types
        reason = _first_line(exc)[:200]
        raise GalaxyError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {reason}); use --restart.") \
            from None
    if not isinstance(state, dict) or state.get("config_hash") != config_hash:
        found = state.get("config_hash") if isinstance(state, dict) else None
        raise GalaxyError(f"checkpoint {path} was trained with a different configuration "
                          f"(hash {found} vs {config_hash}); use --restart for a new run.")
    return state


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or ["(no message)"])[0]
