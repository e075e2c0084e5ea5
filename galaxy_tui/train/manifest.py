"""What a run needs to be reproduced: code version and commit (with the diff of a dirty tree), Python,
torch, CUDA, cuDNN and driver versions, GPU models, installed packages, the seed, and checksums of
the galaxies the run saw. Written by rank 0 at every attempt into manifest.json (a resume may run on
another machine); `galaxy-tui show` prints the latest."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from galaxy_tui.atomic import atomic_write_bytes, atomic_write_json, read_json

_SOURCE = Path(__file__).resolve().parents[2]  # the checkout galaxy_tui runs from (when installed -e)


def git_output(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def driver_version() -> str | None:
    try:
        import pynvml
        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - no library, no driver: there is no driver version to record
        return None


def frame_checksums(frame: pd.DataFrame) -> dict[str, str]:
    """sha256 of the catalogue rows the run used (every column, in order) and of its image list."""
    catalogue = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    images = hashlib.sha256("\n".join(map(str, frame["ref"])).encode())
    return {"catalogue_sha256": catalogue.hexdigest(), "image_list_sha256": images.hexdigest()}


def build_manifest(attempt: int, seed: int, device: torch.device, dataset: dict[str, Any],
                   frame: pd.DataFrame) -> tuple[dict[str, Any], str | None]:
    """The record of this attempt, and the diff of a dirty checkout (None when clean or not a checkout)."""
    commit = git_output("rev-parse", "HEAD")
    status = git_output("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status and status.strip())
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if device.type == "cuda" else []
    record = {
        "attempt": attempt, "t": time.time(), "host": socket.gethostname(),
        "galaxy_tui": importlib.metadata.version("galaxy-tui"),
        "git_commit": commit.strip() if commit else None, "git_dirty": dirty if commit else None,
        "python": sys.version.split()[0], "platform": platform.platform(),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": driver_version(), "gpus": gpus, "device": str(device), "seed": seed,
        "dataset": {**dataset, "rows": len(frame), **frame_checksums(frame)},
        "packages": sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                           if d.metadata["Name"]),
    }
    return record, (git_output("diff", "HEAD") if dirty else None)


def write_manifest(run_dir: Path, record: dict[str, Any], diff: str | None) -> None:
    previous = read_json(run_dir / "manifest.json") or {}
    attempts = [a for a in previous.get("attempts", []) if a.get("attempt") != record["attempt"]]
    if diff:
        name = f"manifest-attempt{record['attempt']}.diff"
        atomic_write_bytes(run_dir / name, diff.encode())
        record = {**record, "git_diff": name}
    atomic_write_json(run_dir / "manifest.json", {"attempts": [*attempts, record]})
