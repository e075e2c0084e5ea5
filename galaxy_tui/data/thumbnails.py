"""Images made for the eye, not for the network: centre crop, asinh stretch, resize.

Survey cut-outs are mostly dark sky; shown raw in a small terminal thumbnail they become black
squares. The stretch runs from the sky level (median) to a high percentile, as astronomers do.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from galaxy_tui.data.images import centre_crop


def stretch(image: np.ndarray, low_percentile: float = 50.0, high_percentile: float = 99.7,
            softening: float = 0.1) -> np.ndarray:
    """asinh stretch between the sky level and a bright percentile, over all channels together."""
    values = image.astype(np.float32)
    luminance = values.mean(axis=2)
    sky = np.percentile(luminance, low_percentile)
    top = max(np.percentile(luminance, high_percentile), sky + 1.0)
    scaled = np.clip((values - sky) / (top - sky), 0.0, None)
    out = np.arcsinh(scaled / softening) / np.arcsinh(1.0 / softening)
    return (np.clip(out, 0.0, 1.0) * 255).astype(np.uint8)


def thumbnail(image: np.ndarray, size: int = 96, crop: float = 0.5) -> Image.Image:
    return Image.fromarray(stretch(centre_crop(image, crop))).resize((size, size), Image.Resampling.LANCZOS)
