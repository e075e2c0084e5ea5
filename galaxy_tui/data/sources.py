"""From a registry dataset table to a loaded Dataset."""

from __future__ import annotations

from pathlib import Path

from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.folder import load_image_folder
from galaxy_tui.data.gz2 import load_gz2_hart16
from galaxy_tui.data.gz_decals import load_gz_decals5
from galaxy_tui.data.h5_sources import load_galaxy10, load_galaxy_mnist
from galaxy_tui.data.kaggle_gz2 import load_kaggle_gz2
from galaxy_tui.data.synthetic import load_synthetic
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import DatasetSpec


def _int_option(spec: DatasetSpec, key: str, default: int) -> int:
    value = spec.options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise GalaxyError(f"[datasets.{spec.name}] {key} = {value!r} must be a positive integer.")
    return value


def load_dataset(spec: DatasetSpec, cache_dir: Path | None = None) -> Dataset:
    """`cache_dir` keeps parsed catalogue columns between loads (see column_cache)."""
    kind = spec.kind
    if kind == "synthetic":
        return load_synthetic(spec.name, _int_option(spec, "count", 3000), _int_option(spec, "size", 64),
                              int(spec.options.get("seed", 0)), float(spec.options.get("mislabel", 0.0)),
                              float(spec.options.get("rare", 0.0)))
    if kind == "galaxy10-h5":
        return load_galaxy10(spec.name, spec.path("path"))
    if kind == "galaxy-mnist-h5":
        return load_galaxy_mnist(spec.name, spec.path("train"), spec.path("test"))
    if kind == "gz2-hart16":
        return load_gz2_hart16(spec.name, spec.path("catalog"), spec.path("mapping"), spec.path("images"),
                               str(spec.options.get("fractions", "debiased")), cache_dir)
    if kind == "gz-decals5":
        return load_gz_decals5(spec.name, spec.path("catalog"), spec.path("images"),
                               str(spec.options.get("fractions", "fraction")), cache_dir)
    if kind == "kaggle-gz2":
        return load_kaggle_gz2(spec.name, spec.path("solutions"), spec.path("images"), cache_dir)
    if kind == "image-folder":
        return load_image_folder(spec.name, spec.path("path"), spec.options.get("merge"),
                                 spec.options.get("exclude"))
    raise GalaxyError(f"[datasets.{spec.name}] kind = {kind!r} has no loader.")
