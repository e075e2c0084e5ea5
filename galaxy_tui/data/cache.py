"""The prepared-image cache: decode and resize once into a memory-mapped uint8 array on disk.

Keyed by the source's fingerprint, the selected ids, the size and the crop, so later epochs and
later runs never decode a JPEG again. A build writes into a private folder and is renamed into
place only when complete, so an interrupted build is never mistaken for a finished cache.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_tui.atomic import locked
from galaxy_tui.data.catalog import Dataset, fingerprint_of
from galaxy_tui.data.images import ImageUnreadable, resize_image
from galaxy_tui.errors import GalaxyError

Progress = Callable[[int, int], None]
_CHUNK = 256
_BATCH = 32  # images a thread prepares per task
_HEADROOM_BYTES = 64 * 2**20  # the valid flags, meta.json and whatever else shares the disk


@dataclass
class PreparedImages:
    images: np.ndarray  # (N, S, S, 3) uint8, memory-mapped read-only
    valid: np.ndarray   # (N,) bool: False where the source image could not be read
    path: Path

    @property
    def unreadable(self) -> int:
        return int((~self.valid).sum())


def cache_key(dataset: Dataset, refs: Sequence, size: int, crop: float) -> str:
    return fingerprint_of("prepared-v1", dataset.kind, dataset.fingerprint, size, crop,
                          fingerprint_of(*map(str, refs)))


def _open(folder: Path) -> PreparedImages:
    meta = json.loads((folder / "meta.json").read_text())
    images = np.memmap(folder / "images.u8", dtype=np.uint8, mode="r",
                       shape=(meta["count"], meta["size"], meta["size"], 3))
    return PreparedImages(images, np.load(folder / "valid.npy"), folder)


def prepare_images(dataset: Dataset, refs: Sequence, size: int, cache_root: Path, crop: float = 1.0,
                   progress: Progress | None = None, threads: int | None = None) -> PreparedImages:
    """The cached array for these rows, building it first if needed."""
    if len(refs) == 0:
        raise GalaxyError(f"{dataset.name}: no images to prepare; the labelling or split left none.")
    final = cache_root / cache_key(dataset, refs, size, crop)
    if (final / "meta.json").exists():
        return _open(final)
    with locked(final):  # processes preparing the same images (DDP ranks, two runs) build it once
        if (final / "meta.json").exists():
            return _open(final)
        sweep_interrupted_builds(cache_root)
        return _build(dataset, refs, size, crop, final, progress, threads)


def sweep_interrupted_builds(cache_root: Path) -> list[Path]:
    """Remove half-built caches whose building process is gone (killed mid-build; they can be tens of GB)."""
    removed = []
    for folder in cache_root.glob("*.building-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cache_bytes(count: int, size: int) -> int:
    return count * size * size * 3


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def check_cache_space(dataset: Dataset, refs: Sequence, size: int, cache_root: Path, crop: float = 1.0) -> None:
    """Refuse, before anything is written, a cache that the disk cannot hold (a full disk mid-build would kill
    the worker with SIGBUS through the memory map)."""
    if (cache_root / cache_key(dataset, refs, size, crop) / "meta.json").exists():
        return
    _require_space(cache_root, cache_bytes(len(refs), size))


def _require_space(cache_root: Path, needed: int) -> None:
    existing = cache_root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed + _HEADROOM_BYTES:
        raise GalaxyError(f"the prepared-image cache needs {_gigabytes(needed)} in {cache_root}, and only "
                          f"{_gigabytes(free)} is free there; free {_gigabytes(needed + _HEADROOM_BYTES - free)} or "
                          f"point the workspace's cache_dir at a larger disk.")


def _reserve(path: Path, needed: int, cache_root: Path) -> None:
    """Allocate the cache file's blocks now, so the disk says it is full here and not as a SIGBUS later."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, needed)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GalaxyError(f"no space left in {cache_root} for the prepared-image cache ({_gigabytes(needed)}); "
                              f"free space or point the workspace's cache_dir at a larger disk.") from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot reserve: write as before
            raise
    finally:
        os.close(fd)


def _build(dataset: Dataset, refs: Sequence, size: int, crop: float, final: Path, progress: Progress | None,
           threads: int | None) -> PreparedImages:
    building = final.parent / f"{final.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    count = len(refs)
    _require_space(final.parent, cache_bytes(count, size))
    building.mkdir(parents=True)
    try:
        (building / "images.u8").touch()
        _reserve(building / "images.u8", cache_bytes(count, size), final.parent)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    array = np.memmap(building / "images.u8", dtype=np.uint8, mode="r+", shape=(count, size, size, 3))
    valid = np.zeros(count, dtype=bool)

    def load(rows: range) -> list[bool]:
        readable = []
        for i in rows:
            try:
                array[i] = resize_image(dataset.read_image(refs[i]), size, crop)
                readable.append(True)
            except ImageUnreadable:
                readable.append(False)
        return readable

    try:
        with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, count, _CHUNK):
                stop = min(start + _CHUNK, count)
                # A task per batch of images, not per image: a small JPEG decodes in about the time the pool
                # takes to hand one task over.
                batches = [range(first, min(first + _BATCH, stop)) for first in range(start, stop, _BATCH)]
                valid[start:stop] = [ok for batch in pool.map(load, batches) for ok in batch]
                if progress:
                    progress(stop, count)  # may raise (a stop): the half-built folder goes
    except BaseException:
        del array
        shutil.rmtree(building, ignore_errors=True)
        raise
    array.flush()
    np.save(building / "valid.npy", valid)
    (building / "meta.json").write_text(json.dumps({"count": count, "size": size, "crop": crop,
                                                    "source": dataset.location, "dataset": dataset.name}))
    try:
        os.rename(building, final)
    except OSError:  # another process finished the same cache first: use theirs
        shutil.rmtree(building, ignore_errors=True)
    return _open(final)
