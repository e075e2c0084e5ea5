"""The galaxies a result is measured on, as every results writer takes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Measured:
    """Ids, the truth (class indices, or the catalogue's answers with NaN for none) and the model's output
    (class probabilities, or answer fractions)."""

    ids: np.ndarray
    truth: np.ndarray
    predicted: np.ndarray
