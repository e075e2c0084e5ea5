"""Checkpoints: atomic (temp, fsync, rename), loaded with weights_only=True, refused if from another config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from galaxy_tui.atomic import atomic_write
from galaxy_tui.errors import GalaxyError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """A crash or kill at any moment leaves either the old file or the new one, never a torn one."""
    atomic_write(path, lambda handle: torch.save(state, handle), sweep=True)  # rank 0 is the only writer


def load_checkpoint(path: Path, config_hash: str) -> dict[str, Any]:
    if not path.exists():
        raise GalaxyError(f"no checkpoint at {path}; train the experiment first (or --restart).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: torch raises several types
        raise GalaxyError(f"checkpoint {path} cannot be read ({exc}); use --restart.") from None
    if state.get("config_hash") != config_hash:
        raise GalaxyError(f"checkpoint {path} was trained with a different configuration "
                          f"(hash {state.get('config_hash')} vs {config_hash}); use --restart for a new run.")
    return state
