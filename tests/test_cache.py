"""The prepared-image cache: built once, reused, never taken as complete after an interrupted build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REALDATA
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.folder import load_image_folder
from galaxy_tui.data.images import resize_image
from galaxy_tui.data.synthetic import load_synthetic


def test_build_once_then_reuse_with_progress(tmp_path: Path) -> None:
    dataset = load_synthetic("d", 300, 48, seed=1)
    refs = list(dataset.frame["ref"][:300])
    reported: list[tuple[int, int]] = []
    first = prepare_images(dataset, refs, 32, tmp_path, progress=lambda d, t: reported.append((d, t)))
    assert reported[-1] == (300, 300) and len(reported) >= 2
    assert first.images.shape == (300, 32, 32, 3) and first.valid.all()
    assert np.array_equal(first.images[17], resize_image(dataset.read_image(17), 32))
    calls: list[int] = []
    again = prepare_images(dataset, refs, 32, tmp_path, progress=lambda d, t: calls.append(d))
    assert calls == [] and again.path == first.path
    assert prepare_images(dataset, refs, 24, tmp_path).path != first.path


def test_interrupted_build_is_not_taken_as_complete(tmp_path: Path) -> None:
    dataset = load_synthetic("d", 100, 32, seed=2)
    refs = list(dataset.frame["ref"])

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_images(dataset, refs, 16, tmp_path, progress=interrupt)
    assert not any((p / "meta.json").exists() for p in tmp_path.iterdir())
    built: list[int] = []
    prepared = prepare_images(dataset, refs, 16, tmp_path, progress=lambda d, t: built.append(d))
    assert built[-1] == 100 and prepared.valid.all()


def test_real_jpegs_are_prepared_with_centre_crop(tmp_path: Path) -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA}")
    dataset = load_image_folder("gz1", REALDATA)
    refs = list(dataset.frame["ref"])
    prepared = prepare_images(dataset, refs, 64, tmp_path, crop=0.5)
    assert prepared.valid.all() and prepared.images.shape == (120, 64, 64, 3)
    centre = prepared.images[:, 24:40, 24:40].mean()
    border = prepared.images[:, :8, :8].mean()
    assert centre > border  # galaxies sit in the middle of the cut-outs
