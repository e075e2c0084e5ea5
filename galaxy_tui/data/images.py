"""Reading one image as uint8 HxWx3 from files (Pillow) or HDF5 (h5py), never all at once."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageUnreadable(Exception):
    """One image could not be decoded; callers skip it and count it."""


def read_image_file(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Decode a JPEG/PNG to uint8 RGB. `draft_size` lets JPEG decode at a reduced scale (much faster)."""
    try:
        with Image.open(path) as image:
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ImageUnreadable(f"{path}: {exc}") from None


class H5Images:
    """Row `i` of an (N, H, W, 3) uint8 HDF5 dataset. Opens the file lazily, once per process."""

    def __init__(self, path: Path, dataset: str = "images"):
        self.path = path
        self.dataset = dataset
        self._pid = -1
        self._file: h5py.File | None = None

    def __call__(self, index: int) -> np.ndarray:
        if self._pid != os.getpid() or self._file is None:
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        image = np.asarray(self._file[self.dataset][int(index)], dtype=np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        return image

    def __getstate__(self) -> dict:
        return {"path": self.path, "dataset": self.dataset, "_pid": -1, "_file": None}
