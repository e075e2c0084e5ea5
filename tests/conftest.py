"""Fixtures that write small files in the real formats (HDF5 with h5py, CSV with pandas, JPEG with Pillow)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galaxy_tui.data.gz2 import HART16_ANSWERS
from galaxy_tui.data.kaggle_gz2 import TARGET_COLUMNS
from trained_runs import REALDATA, demo_run, folder_run, fraction_run  # noqa: F401  (session fixtures shared by the suite)


@pytest.fixture
def cpu_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers this test starts see no GPU: several ranks take the CPU/gloo path on any box (on a GPU box
    with fewer GPUs than ranks they would otherwise ask for a device that is not there)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def write_jpeg(path: Path, seed: int, size: int = 32) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path, quality=85)


@pytest.fixture
def galaxy10_h5(tmp_path: Path) -> Path:
    path = tmp_path / "Galaxy10_DECals.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
        f["ans"] = np.arange(20) % 10
        f["ra"] = rng.random(20)
        f["dec"] = rng.random(20)
        f["redshift"] = rng.random(20)
        f["pxscale"] = np.full(20, 0.262)
    return path


@pytest.fixture
def galaxy_mnist_h5(tmp_path: Path) -> tuple[Path, Path]:
    paths = []
    for part, n in (("train", 16), ("test", 8)):
        path = tmp_path / f"{part}_dataset.hdf5"
        with h5py.File(path, "w") as f:
            f["images"] = np.random.default_rng(n).integers(0, 255, (n, 24, 24, 3), dtype=np.uint8)
            f["labels"] = (np.arange(n) % 4).astype(np.uint8)
        paths.append(path)
    return paths[0], paths[1]


def hart16_row(objid: int, smooth: float, disk: float, artifact: float, yes: float, spiral: float,
               total: int = 40) -> dict:
    values = {"smooth": smooth, "disk": disk, "artifact": artifact, "edgeon_yes": yes,
              "edgeon_no": 1 - yes, "spiral": spiral}
    row: dict = {"dr7objid": objid, "total_classifications": total}
    for ours, theirs in HART16_ANSWERS.items():
        for family in ("fraction", "weighted_fraction", "debiased"):
            row[f"{theirs}_{family}"] = values[ours]
        row[f"{theirs}_count"] = round(values[ours] * total)
    return row


@pytest.fixture
def gz2_files(tmp_path: Path) -> dict[str, Path]:
    """Six galaxies: elliptical, spiral, edge-on, an ambiguous one, a low-vote one, an artifact."""
    rows = [hart16_row(1001, 0.9, 0.08, 0.02, 0.1, 0.1),
            hart16_row(1002, 0.05, 0.93, 0.02, 0.05, 0.9),
            hart16_row(1003, 0.05, 0.93, 0.02, 0.95, 0.1),
            hart16_row(1004, 0.55, 0.43, 0.02, 0.5, 0.5),
            hart16_row(1005, 0.95, 0.03, 0.02, 0.1, 0.1, total=4),
            hart16_row(1006, 0.1, 0.1, 0.8, 0.1, 0.1)]
    catalog = tmp_path / "gz2_hart16.csv"
    pd.DataFrame(rows).to_csv(catalog, index=False)
    mapping = tmp_path / "gz2_filename_mapping.csv"
    pd.DataFrame({"objid": [r["dr7objid"] for r in rows], "sample": "original",
                  "asset_id": range(1, 7)}).to_csv(mapping, index=False)
    images = tmp_path / "images"
    images.mkdir()
    for asset in range(1, 7):
        write_jpeg(images / f"{asset}.jpg", asset)
    return {"catalog": catalog, "mapping": mapping, "images": images}


@pytest.fixture
def kaggle_files(tmp_path: Path) -> dict[str, Path]:
    """Cumulative targets for an elliptical, a spiral and an edge-on galaxy."""
    def targets(q1: tuple, edge: float, spiral: float) -> dict:
        values = dict.fromkeys(TARGET_COLUMNS, 0.0)
        values["Class1.1"], values["Class1.2"], values["Class1.3"] = q1
        values["Class2.1"], values["Class2.2"] = q1[1] * edge, q1[1] * (1 - edge)
        values["Class4.1"], values["Class4.2"] = values["Class2.2"] * spiral, values["Class2.2"] * (1 - spiral)
        return values
    rows = [{"GalaxyID": 100008, **targets((0.9, 0.08, 0.02), 0.1, 0.2)},
            {"GalaxyID": 100023, **targets((0.04, 0.95, 0.01), 0.05, 0.92)},
            {"GalaxyID": 100053, **targets((0.04, 0.95, 0.01), 0.9, 0.1)}]
    solutions = tmp_path / "training_solutions_rev1.csv"
    pd.DataFrame(rows).to_csv(solutions, index=False)
    images = tmp_path / "images_training_rev1"
    images.mkdir()
    for row in rows:
        write_jpeg(images / f"{row['GalaxyID']}.jpg", row["GalaxyID"], 48)
    return {"solutions": solutions, "images": images}
