"""One epoch of the same galaxy JPEGs: through the prepared-image cache vs decoding with PIL every epoch.

The baseline is the seeds' pipeline: PIL open + convert RGB + resize to 224 for every image, every epoch.
Ours reads the same images, already decoded and resized, from the memory-mapped cache, in batches.
Images: 1,200 distinct JPEGs made from the 120 real SDSS cut-outs in shared/realdata/gz1_small (423x423):
each in its 8 rotations/reflections and 2 off-centre 400 px crops, re-encoded (quality 90), so no two
files share bytes and each decode is a real one. Also prints the one-off cost of building the cache.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.folder import load_image_folder
from galaxy_tui.train.feed import read_rows

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "gz1_small"
SIZE, COPIES, BATCH = 224, 10, 64


def variants(image: Image.Image) -> list[Image.Image]:
    turns = [image.rotate(90 * k, expand=True) for k in range(4)]
    crops = [image.crop((0, 0, 400, 400)), image.crop((23, 23, 423, 423))]
    return turns + [t.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for t in turns] + crops


def make_folder(root: Path) -> Path:
    for source in sorted(REAL.glob("*/*.jpeg")):
        target = root / source.parent.name
        target.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as image:
            for c, variant in enumerate(variants(image.convert("RGB"))[:COPIES]):
                variant.save(target / f"{source.stem}_{c}.jpg", quality=90)
    return root


def pil_epoch(paths: list[str]) -> float:
    start = time.perf_counter()
    total = 0
    for path in paths:
        with Image.open(path) as image:
            total += np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)).shape[0]
    return time.perf_counter() - start


def cache_epoch(images: np.ndarray, rng: np.random.Generator) -> float:
    order = rng.permutation(len(images))
    start = time.perf_counter()
    for i in range(0, len(order), BATCH):
        read_rows(images, np.sort(order[i:i + BATCH]))
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "imgs")
        dataset = load_image_folder("bench", folder)
        paths = list(dataset.frame["ref"])
        build = time.perf_counter()
        prepared = prepare_images(dataset, paths, SIZE, Path(tmp) / "cache")
        build = time.perf_counter() - build
        rng = np.random.default_rng(0)
        pil = [pil_epoch(paths) for _ in range(2)]
        cached = [cache_epoch(prepared.images, rng) for _ in range(3)]
        n = len(paths)
        print(f"{n} distinct JPEGs (~420px -> {SIZE}px), one epoch: PIL decode {min(pil):.2f} s "
              f"({n / min(pil):.0f} img/s), "
              f"cache {min(cached):.3f} s ({n / min(cached):.0f} img/s), ratio {min(pil) / min(cached):.1f}x; "
              f"one-off cache build {build:.2f} s")


if __name__ == "__main__":
    main()
