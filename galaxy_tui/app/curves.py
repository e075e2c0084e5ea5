"""Curves made readable: smoothing as TensorBoard does it and a y-range a single outlier does not flatten."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SMOOTHING = 0.9  # the EMA weight of the past


class RunningEma:
    """Exponential moving average, debiased (the first points are not pulled towards zero), of a series
    that only grows: a day's run has ~170,000 step points and its curve is redrawn at each new one, so
    each new point costs one update, not a pass over the whole run."""

    def __init__(self, weight: float = SMOOTHING):
        self.weight = weight
        self.values: list[float] = []
        self._running = 0.0

    def extend(self, points: Sequence[float]) -> list[float]:
        w = self.weight
        for value in points:
            self._running = w * self._running + (1 - w) * value
            self.values.append(self._running / (1 - w ** (len(self.values) + 1)))
        return self.values


def ema(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    return RunningEma(weight).extend(values)


def visible(xs: Sequence[float], ys: Sequence[float], limits: tuple[float, float] | None) -> tuple[list, list]:
    """The finite points within the y-range: plotext fails on a series with no point to draw (a lone first
    epoch's loss above the range, a NaN loss), so such a series is left out rather than plotted."""
    low, high = limits if limits else (-np.inf, np.inf)
    kept = [(x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y) and low <= y <= high]
    return [x for x, _ in kept], [y for _, y in kept]


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
