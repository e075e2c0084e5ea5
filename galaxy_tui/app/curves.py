"""Curves made readable: smoothing as TensorBoard does it and a y-range a single outlier does not flatten."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SMOOTHING = 0.9  # the EMA weight of the past


def ema(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, debiased (the first points are not pulled towards zero)."""
    smoothed, running = [], 0.0
    for n, value in enumerate(values, start=1):
        running = weight * running + (1 - weight) * value
        smoothed.append(running / (1 - weight ** n))
    return smoothed


def robust_ylim(series: Sequence[Sequence[float]], log: bool = False) -> tuple[float, float] | None:
    """A y-range holding the curves' bulk: the first epochs' loss (often 10x the rest) and a lone spike
    would otherwise squash everything after them into the bottom row. The top is the 98th percentile of
    the points past the first 5% plus a margin; the bottom the minimum. None when there is nothing."""
    points = [np.asarray(s, dtype=float) for s in series if len(s)]
    if not points:
        return None
    later = np.concatenate([p[len(p) // 20:] for p in points])
    everything = np.concatenate(points)
    finite = everything[np.isfinite(everything)]
    later = later[np.isfinite(later)]
    if not len(finite) or not len(later):
        return None
    low, top = float(finite.min()), float(np.percentile(later, 98))
    if log:
        low = max(low, 1e-12)
        return low / 1.2, max(top, low) * 1.5
    margin = 0.1 * (top - low) or 0.1 * abs(top) or 0.1
    return (max(0.0, low - margin) if low >= 0 else low - margin), top + margin  # a loss axis stays >= 0
