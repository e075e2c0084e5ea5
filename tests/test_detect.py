"""Guessing a dataset's kind from a path (the UI's "add dataset")."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from conftest import REALDATA
from galaxy_tui.data.detect import detect_dataset
from galaxy_tui.errors import GalaxyError


def typed(path: Path, workspace: Path) -> Path:
    """The path as a person in the workspace types it."""
    return path.relative_to(workspace)


def test_each_kind_is_recognised(tmp_path: Path, galaxy10_h5: Path, galaxy_mnist_h5: tuple[Path, Path],
                                 gz2_files: dict[str, Path], kaggle_files: dict[str, Path]) -> None:
    assert detect_dataset(typed(galaxy10_h5, tmp_path), tmp_path) == \
        {"kind": "galaxy10-h5", "path": "Galaxy10_DECals.h5"}
    train, test = galaxy_mnist_h5
    assert detect_dataset(typed(test, tmp_path), tmp_path) == \
        {"kind": "galaxy-mnist-h5", "train": train.name, "test": test.name}
    gz2 = detect_dataset(typed(gz2_files["catalog"], tmp_path), tmp_path)
    assert gz2["kind"] == "gz2-hart16" and gz2["mapping"] == "gz2_filename_mapping.csv"
    kaggle = detect_dataset(typed(kaggle_files["solutions"], tmp_path), tmp_path)
    assert kaggle["kind"] == "kaggle-gz2" and kaggle["images"] == "images_training_rev1"
    for name in ("spiral", "elliptical"):
        (tmp_path / "classes" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "classes" / name / "a.jpg")
    assert detect_dataset(Path("classes"), tmp_path) == {"kind": "image-folder", "path": "classes"}


def test_paths_are_kept_as_typed(tmp_path: Path, kaggle_files: dict[str, Path]) -> None:
    """A symlinked data folder stays the symlink (the disk behind it may change); absolute stays absolute."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "data").symlink_to(kaggle_files["solutions"].parent)
    linked = detect_dataset(Path("data") / kaggle_files["solutions"].name, tmp_path / "ws")
    assert linked["solutions"] == f"data/{kaggle_files['solutions'].name}"
    assert linked["images"] == "data/images_training_rev1"
    absolute = detect_dataset(kaggle_files["solutions"], tmp_path / "ws")
    assert absolute["solutions"] == str(kaggle_files["solutions"])
    assert absolute["images"] == str(kaggle_files["solutions"].parent / "images_training_rev1")


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata/gz1_small is not beside this checkout")
def test_the_real_gz1_folder_is_an_image_folder(tmp_path: Path) -> None:
    assert detect_dataset(REALDATA, tmp_path)["kind"] == "image-folder"


def test_unknown_things_are_explained(tmp_path: Path) -> None:
    with pytest.raises(GalaxyError, match="does not exist"):
        detect_dataset(tmp_path / "nope.h5", tmp_path)
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f["cube"] = np.zeros(3)
    with pytest.raises(GalaxyError, match="has datasets cube; expected images \\+ ans"):
        detect_dataset(tmp_path / "odd.h5", tmp_path)
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(GalaxyError, match="match no known catalogue"):
        detect_dataset(tmp_path / "t.csv", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalaxyError, match="no sub-folders of jpg/png images"):
        detect_dataset(tmp_path / "empty", tmp_path)


def test_a_catalogue_s_images_folder_or_its_parent_finds_the_catalogue(tmp_path: Path,
                                                                       kaggle_files: dict[str, Path]) -> None:
    """People point at what they see: the Kaggle images folder, or the folder holding it and the CSV."""
    for typed in (kaggle_files["images"], tmp_path):
        table = detect_dataset(typed, tmp_path)
        assert table["kind"] == "kaggle-gz2", typed
        assert Path(table["solutions"]).name == "training_solutions_rev1.csv"
        assert Path(table["images"]).name == "images_training_rev1"


def test_a_gz2_folder_with_its_table_and_images_is_gz2(tmp_path: Path, gz2_files: dict[str, Path]) -> None:
    for typed in (gz2_files["images"], tmp_path):
        table = detect_dataset(typed, tmp_path)
        assert table["kind"] == "gz2-hart16" and Path(table["catalog"]).name == "gz2_hart16.csv", typed


def test_datasets_of_known_kinds_get_short_names() -> None:
    from galaxy_tui.data.detect import KIND_NAMES, dataset_files
    assert KIND_NAMES["kaggle-gz2"] == "kaggle-gz2" and KIND_NAMES["gz2-hart16"] == "gz2"
    assert dataset_files({"kind": "kaggle-gz2", "solutions": "a.csv", "images": "imgs", "crop": 0.75}) == \
        "solutions a.csv, images imgs"
