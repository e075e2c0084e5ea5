"""Galaxy10 DECaLS and GalaxyMNIST: labelled images in HDF5 files, read with h5py."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset, ensure_not_empty, file_signature, fingerprint_of, require_file
from galaxy_tui.errors import GalaxyError

GALAXY10_CLASSES: tuple[str, ...] = (
    "Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth",
    "Barred Spiral", "Unbarred Tight Spiral", "Unbarred Loose Spiral", "Edge-on without Bulge",
    "Edge-on with Bulge",
)
GALAXY_MNIST_CLASSES: tuple[str, ...] = ("smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral")


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


def _open_checked(path: Path, what: str, images_key: str, label_key: str) -> tuple[int, np.ndarray]:
    """Number of images and the label vector, after checking the file has what it should."""
    require_file(path, what)
    try:
        with h5py.File(path, "r") as handle:
            missing = [key for key in (images_key, label_key) if key not in handle]
            if missing:
                raise GalaxyError(f"{what} {path} has no dataset(s) {', '.join(missing)}; it has "
                                  f"{', '.join(handle.keys()) or 'nothing'}. Is this the right file?")
            images = handle[images_key]
            if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
                raise GalaxyError(f"{what} {path}: '{images_key}' is {images.shape} {images.dtype}; "
                                  f"expected (N, H, W, 3) uint8.")
            labels = np.asarray(handle[label_key]).astype(np.int64).reshape(-1)
            if len(labels) != images.shape[0]:
                raise GalaxyError(f"{what} {path}: {images.shape[0]} images but {len(labels)} labels.")
            return images.shape[0], labels
    except OSError as exc:
        raise GalaxyError(f"{what} {path} is not a readable HDF5 file ({exc}).") from None


def _check_labels(labels: np.ndarray, classes: tuple[str, ...], where: str) -> None:
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        raise GalaxyError(f"{where}: {int(bad.sum())} label(s) outside 0..{len(classes) - 1} "
                          f"(e.g. {int(labels[bad][0])}).")


def load_galaxy10(name: str, path: Path) -> Dataset:
    count, labels = _open_checked(path, "Galaxy10 DECaLS file", "images", "ans")
    _check_labels(labels, GALAXY10_CLASSES, str(path))
    frame = pd.DataFrame({"id": [f"g10-{i}" for i in range(count)], "ref": np.arange(count),
                          "label": labels.astype(np.int8)})
    ensure_not_empty(frame, str(path))
    return Dataset(name, "galaxy10-h5", frame, GALAXY10_CLASSES, H5Images(path),
                   fingerprint_of("galaxy10", file_signature(path)), location=str(path))


class _SplitH5Images:
    """Reads ('train', i) or ('test', i) from the two GalaxyMNIST files."""

    def __init__(self, train: Path, test: Path):
        self.readers = {"train": H5Images(train), "test": H5Images(test)}

    def __call__(self, ref: str) -> np.ndarray:
        part, index = ref.split(":")
        return self.readers[part](int(index))


def load_galaxy_mnist(name: str, train: Path, test: Path) -> Dataset:
    parts = []
    for part, path in (("train", train), ("test", test)):
        count, labels = _open_checked(path, f"GalaxyMNIST {part} file", "images", "labels")
        _check_labels(labels, GALAXY_MNIST_CLASSES, str(path))
        parts.append(pd.DataFrame({"id": [f"gmnist-{part}-{i}" for i in range(count)],
                                   "ref": [f"{part}:{i}" for i in range(count)],
                                   "label": labels.astype(np.int8), "split": part}))
    frame = pd.concat(parts, ignore_index=True)
    ensure_not_empty(frame, f"{train} + {test}")
    return Dataset(name, "galaxy-mnist-h5", frame, GALAXY_MNIST_CLASSES, _SplitH5Images(train, test),
                   fingerprint_of("galaxy-mnist", file_signature(train), file_signature(test)),
                   location=f"{train} + {test}")
