"""One image as uint8 HxWx3: decoding files with Pillow, cropping and resizing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageUnreadable(Exception):
    """One image could not be decoded; callers skip it and count it."""


def _decoded(source: str | Path | io.BytesIO, name: str | Path, draft_size: int | None) -> np.ndarray:
    try:
        with Image.open(source) as image:
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise ImageUnreadable(f"{name}: not an image format Pillow can decode (JPEG, PNG, TIFF, …)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"{name}: {exc}") from None


def read_image_file(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Decode a JPEG/PNG to uint8 RGB. `draft_size` lets JPEG decode at a reduced scale (much faster)."""
    return _decoded(path, path, draft_size)


def decode_image_bytes(data: bytes, name: str) -> np.ndarray:
    """An uploaded image's bytes to uint8 RGB; `name` is how the message names it."""
    return _decoded(io.BytesIO(data), name, None)


def centre_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    if fraction >= 1.0:
        return image
    h, w = image.shape[:2]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top:top + ch, left:left + cw]


def resize_image(image: np.ndarray, size: int, crop: float = 1.0) -> np.ndarray:
    image = centre_crop(image, crop)
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))
