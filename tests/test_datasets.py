"""Every dataset kind from small real-format files; bad input gives clear messages, never a crash."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import REALDATA, hart16_row, write_jpeg
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.folder import load_image_folder
from galaxy_tui.data.gz2 import load_gz2_hart16
from galaxy_tui.data.h5_sources import GALAXY10_CLASSES, load_galaxy10, load_galaxy_mnist
from galaxy_tui.data.kaggle_gz2 import TARGET_COLUMNS, load_kaggle_gz2
from galaxy_tui.data.labels import empty_class_warning
from galaxy_tui.data.synthetic import load_synthetic
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling


def test_galaxy10(galaxy10_h5: Path) -> None:
    dataset = load_galaxy10("g10", galaxy10_h5)
    assert dataset.classes == GALAXY10_CLASSES and len(dataset.classes) == 10
    assert list(dataset.counts(Labelling()).values()) == [2] * 10
    image = dataset.read_image(dataset.frame["ref"][3])
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    with h5py.File(galaxy10_h5) as f:
        assert np.array_equal(image, f["images"][3])


def test_galaxy_mnist_keeps_its_split(galaxy_mnist_h5: tuple[Path, Path]) -> None:
    dataset = load_galaxy_mnist("gm", *galaxy_mnist_h5)
    assert dataset.classes == ("smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral")
    assert dataset.frame["split"].value_counts().to_dict() == {"train": 16, "test": 8}
    test_row = dataset.frame[dataset.frame["split"] == "test"].iloc[2]
    with h5py.File(galaxy_mnist_h5[1]) as f:
        assert np.array_equal(dataset.read_image(test_row["ref"]), f["images"][2])


def test_gz2_hart16_labels_by_the_rule(gz2_files: dict[str, Path]) -> None:
    dataset = load_gz2_hart16("gz2", **gz2_files)
    labels = dict(zip(dataset.frame["id"], dataset.labels(Labelling(0.8, 10, 0.5))))
    assert labels == {"1001": 0, "1002": 1, "1003": 2, "1004": -1, "1005": -1, "1006": -1}
    assert dataset.read_image("3.jpg").shape == (32, 32, 3)
    assert load_gz2_hart16("gz2", **gz2_files, family="fraction").counts(Labelling()) == \
        {"elliptical": 1, "spiral": 1, "edge_on": 1}


def test_kaggle_gz2_derives_per_question_fractions(kaggle_files: dict[str, Path]) -> None:
    dataset = load_kaggle_gz2("k", **kaggle_files)
    assert list(dataset.labels(Labelling(0.8, 10, 0.5))) == [0, 1, 2]
    assert set(TARGET_COLUMNS) <= set(dataset.frame.columns) and len(TARGET_COLUMNS) == 37
    spiral_row = dataset.frame.iloc[1]
    assert spiral_row["spiral"] == pytest.approx(0.92, abs=1e-5)  # Class4.1 / (Class4.1 + Class4.2)
    assert spiral_row["Class4.1"] < 0.92  # the raw cumulative target stays for regression


def test_real_gz1_small_folder_with_merge() -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA}")
    dataset = load_image_folder("gz1", REALDATA,
                                merge={"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"]})
    assert dataset.classes == ("elliptical", "spiral", "edge_on", "dont_know", "merger")
    assert dataset.counts(Labelling()) == {"elliptical": 20, "spiral": 40, "edge_on": 20, "dont_know": 20,
                                           "merger": 20}
    image = dataset.read_image(dataset.frame["ref"][0])
    assert image.shape == (423, 423, 3) and image.dtype == np.uint8


def test_synthetic_is_deterministic_and_follows_the_threshold() -> None:
    a, b = load_synthetic("d", 200, 32, seed=7), load_synthetic("d", 200, 32, seed=7)
    assert np.array_equal(a.read_image(5), b.read_image(5))
    assert not np.array_equal(a.read_image(5), load_synthetic("d", 200, 32, seed=8).read_image(5))
    loose, strict = a.counts(Labelling(0.6, 10, 0.5)), a.counts(Labelling(0.9, 10, 0.5))
    assert all(strict[k] < loose[k] for k in loose) and min(loose.values()) > 20
    labels = a.labels(Labelling(0.8, 10, 0.5))
    truth = a.frame["true_type"].to_numpy()
    labelled = labels >= 0
    assert (np.array(a.classes)[labels[labelled]] == truth[labelled]).all()


# ------------------------------------------------------------------ bad input

def test_missing_files_and_folders(tmp_path: Path, gz2_files: dict[str, Path]) -> None:
    with pytest.raises(GalaxyError, match="Galaxy10 DECaLS file not found: .*nope.h5"):
        load_galaxy10("g", tmp_path / "nope.h5")
    with pytest.raises(GalaxyError, match="Image folder not found"):
        load_gz2_hart16("gz2", gz2_files["catalog"], gz2_files["mapping"], tmp_path / "no-images")
    with pytest.raises(GalaxyError, match="Image folder not found"):
        load_image_folder("f", tmp_path / "absent")


def test_hdf5_without_expected_datasets_lists_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "wrong.h5"
    with h5py.File(path, "w") as f:
        f["pixels"] = np.zeros((2, 4, 4, 3), np.uint8)
        f["ans"] = np.zeros(2)
    with pytest.raises(GalaxyError, match="has no dataset\\(s\\) images; it has ans, pixels"):
        load_galaxy10("g", path)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(GalaxyError, match="not a readable HDF5 file"):
        load_galaxy10("g", tmp_path / "text.h5")


def test_csv_missing_columns_names_them(gz2_files: dict[str, Path], tmp_path: Path) -> None:
    table = pd.read_csv(gz2_files["catalog"]).drop(columns=["total_classifications",
                                                            "t02_edgeon_a04_yes_debiased"])
    table.to_csv(gz2_files["catalog"], index=False)
    with pytest.raises(GalaxyError, match="missing column\\(s\\) total_classifications, t02_edgeon_a04_yes_debiased"):
        load_gz2_hart16("gz2", **gz2_files)


def test_missing_and_corrupt_images_are_skipped_counted_reported(gz2_files: dict[str, Path], tmp_path: Path) -> None:
    (gz2_files["images"] / "2.jpg").unlink()
    (gz2_files["images"] / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    dataset = load_gz2_hart16("gz2", **gz2_files)
    assert len(dataset.frame) == 5
    assert any("1 of 6 catalogue rows have no image" in p and "2.jpg" in p for p in dataset.problems)
    prepared = prepare_images(dataset, list(dataset.frame["ref"]), 16, tmp_path / "cache")
    assert prepared.unreadable == 1
    assert list(prepared.valid) == [ref != "3.jpg" for ref in dataset.frame["ref"]]


def test_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "folder" / "a").mkdir(parents=True)
    with pytest.raises(GalaxyError, match="the dataset is empty"):
        load_image_folder("f", tmp_path / "folder")
    pd.DataFrame({"GalaxyID": [], **{c: [] for c in TARGET_COLUMNS}}).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "imgs").mkdir()
    with pytest.raises(GalaxyError, match="the dataset is empty"):
        load_kaggle_gz2("k", tmp_path / "s.csv", tmp_path / "imgs")


def test_threshold_that_empties_a_class_warns_with_counts(tmp_path: Path) -> None:
    rows = [hart16_row(1, 0.9, 0.08, 0.02, 0.1, 0.1), hart16_row(2, 0.05, 0.93, 0.02, 0.05, 0.85)]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame({"objid": [1, 2], "asset_id": [1, 2]}).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "im").mkdir()
    for i in (1, 2):
        write_jpeg(tmp_path / "im" / f"{i}.jpg", i)
    dataset = load_gz2_hart16("gz2", tmp_path / "c.csv", tmp_path / "m.csv", tmp_path / "im")
    warning = empty_class_warning(dataset.counts(Labelling(0.9, 10, 0.5)), "gz2")
    assert warning is not None and "spiral, edge_on" in warning and "elliptical=1" in warning


def test_a_galaxy_listed_twice_is_kept_once_and_counted(tmp_path: Path) -> None:
    """a.jpg beside a.png in one class folder: the same galaxy id twice."""
    from PIL import Image

    from galaxy_tui.data.folder import load_image_folder
    for name in ("spiral", "elliptical"):
        (tmp_path / name).mkdir()
        for file_name in ("a.jpg", "b.jpg"):
            Image.new("RGB", (8, 8)).save(tmp_path / name / file_name)
    Image.new("RGB", (8, 8)).save(tmp_path / "spiral" / "a.png")
    dataset = load_image_folder("f", tmp_path)
    assert len(dataset.frame) == 4 and dataset.frame["id"].is_unique
    assert any("1 repeated galaxy id(s) dropped (e.g. spiral/a)" in p for p in dataset.problems)
