"""One image as uint8 HxWx3: decoding files with Pillow, cropping and resizing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageUnreadable(Exception):
    """One image could not be decoded; callers skip it and count it."""


class ImageTooLarge(ImageUnreadable):
    """An image whose header declares more pixels than the caller allows: refused before it is decoded."""


def _within(image: Image.Image, name: str | Path, max_pixels: int, least_side: int) -> None:
    """Refuse an image of more than `max_pixels` from its header alone; a JPEG that its decoder can scale down
    (1/2 to 1/8) under the limit, keeping at least `least_side` pixels a side, is decoded small instead."""
    width, height = image.size
    if width * height <= max_pixels:
        return
    if image.format == "JPEG":
        for scale in (2, 4, 8):
            small = (-(-width // scale), -(-height // scale))
            if small[0] * small[1] <= max_pixels and min(small) >= least_side:
                image.draft("RGB", small)
                if image.size[0] * image.size[1] <= max_pixels:
                    return
                break
    raise ImageTooLarge(f"{name}: {width}x{height} pixels is more than this server decodes ({max_pixels:,} pixels, "
                        f"its --max-pixels); send a cut-out of the galaxy")


def _decoded(source: str | Path | BinaryIO, name: str | Path, draft_size: int | None,
             max_pixels: int | None = None, least_side: int = 0) -> np.ndarray:
    try:
        with Image.open(source) as image:
            if max_pixels is not None:
                _within(image, name, max_pixels, least_side)
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            return np.asarray(image.convert("RGB"))
    except ImageUnreadable:
        raise
    except UnidentifiedImageError:
        raise ImageUnreadable(f"{name}: not an image format Pillow can decode (JPEG, PNG, TIFF, …)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"{name}: {exc}") from None


def read_image_file(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Decode a JPEG/PNG to uint8 RGB. `draft_size` lets JPEG decode at a reduced scale (much faster)."""
    return _decoded(path, path, draft_size)


def decode_upload(source: bytes | BinaryIO, name: str, max_pixels: int | None = None,
                  least_side: int = 0) -> np.ndarray:
    """An uploaded image (its bytes, or the file it was spooled to) to uint8 RGB; `name` is how messages name it.
    With `max_pixels`, an image larger than that is refused from its header (ImageTooLarge) or, a JPEG, decoded
    at a reduced scale that keeps `least_side`."""
    return _decoded(io.BytesIO(source) if isinstance(source, bytes) else source, name, None, max_pixels, least_side)


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
