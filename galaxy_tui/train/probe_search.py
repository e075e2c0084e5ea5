"""The micro-batch search: fit peak memory against batch size, predict the largest size under the
budget, verify it, and on an overshoot shrink in proportion and refit. Pure: it sees memory only
through the trial function, so it is tested with memory models and run for real on CPU and GPU.

Never returns a size that did not run and fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

HEADROOM = 0.03     # aim this share of the per-sample memory below the budget (probe vs training noise)
CLOSE_ENOUGH = 0.05  # stop once the gap between the best fit and the smallest failure is this small
ANCHORS = (2, 16)


@dataclass(frozen=True)
class TrialOutcome:
    fits: bool            # False: the trial ran out of memory
    peak_bytes: int | None
    seconds: float = 0.0


@dataclass(frozen=True)
class Trial:
    index: int
    phase: str            # anchor / predict / verify / recover
    micro_batch: int
    peak_bytes: int | None
    budget_bytes: int
    fits: bool
    seconds: float
    fitted: tuple[float, float, float] | None  # peak ~ a + s*b + c*b^2 after this trial
    predicted: int | None              # the next size the fit suggests


@dataclass
class ProbeResult:
    micro_batch: int
    trials: list[Trial] = field(default_factory=list)


class ProbeError(Exception):
    """Not even a micro-batch of 1 fits."""


def _fit(points: list[tuple[int, int]]) -> tuple[float, float, float] | None:
    """peak(b) = a + s*b + c*b^2 through the three largest measured sizes (c >= 0), else a secant
    through the two largest: local, so it follows convex growth without trusting far-away points."""
    if len(points) < 2:
        return None
    (b1, p1), (b2, p2) = sorted(points)[-2:]
    slope = max((p2 - p1) / (b2 - b1), 1.0)
    line = (p2 - slope * b2, slope, 0.0)
    if len(points) >= 3:
        sizes, peaks = zip(*sorted(points)[-3:])
        c, s, a = np.polyfit(np.array(sizes, dtype=float), np.array(peaks, dtype=float), 2)
        if c > 0 and s + 2 * c * sizes[-1] > 0:
            return float(a), float(s), float(c)
    return line


def _largest_under(fit: tuple[float, float, float], target: float) -> int:
    a, s, c = fit
    if c <= 0:
        return int((target - a) // s)
    return int((-s + np.sqrt(s * s + 4 * c * (target - a))) / (2 * c)) if s * s + 4 * c * (target - a) >= 0 else 0


def search_micro_batch(trial: Callable[[int], TrialOutcome], budget: int | Callable[[], int], upper: int,
                       on_trial: Callable[[Trial], None] | None = None, max_trials: int = 6,
                       oom_errors: tuple[type[BaseException], ...] = ()) -> ProbeResult:
    """Largest micro-batch in 1..upper whose measured peak stays within the budget.

    `budget` is bytes, or a function read once, right after the first trial: on a GPU the free memory
    is only known once kernels ran (the cuDNN/cuBLAS handles and workspaces take 0.3-1 GB outside the
    measured peak). A trial may report an OOM in its outcome or raise one of `oom_errors`."""
    result = ProbeResult(0)
    budget_bytes = budget if isinstance(budget, int) else None
    measured: list[tuple[int, int]] = []  # every (size, peak) seen, fitting or over the budget
    best, smallest_failure = 0, upper + 1

    def run(size: int, phase: str) -> bool:
        nonlocal best, smallest_failure, budget_bytes
        try:
            outcome = trial(size)
        except oom_errors:
            outcome = TrialOutcome(False, None)
        if budget_bytes is None:
            budget_bytes = int(budget())  # type: ignore[operator]
        fits = outcome.fits and outcome.peak_bytes is not None and outcome.peak_bytes <= budget_bytes
        if outcome.peak_bytes is not None:
            measured.append((size, int(outcome.peak_bytes)))
        if fits:
            best = max(best, size)
        else:
            smallest_failure = min(smallest_failure, size)
        fit = _fit(measured)
        record = Trial(len(result.trials) + 1, phase, size, outcome.peak_bytes, budget_bytes, fits,
                       outcome.seconds, fit, _predict(fit) if fit else None)
        result.trials.append(record)
        if on_trial:
            on_trial(record)
        return fits

    def _predict(fit: tuple[float, float, float]) -> int:
        # Headroom is a share of the memory that grows with the batch, not of the whole budget.
        assert budget_bytes is not None
        return _largest_under(fit, budget_bytes - HEADROOM * (budget_bytes - max(fit[0], 0.0)))

    for size in sorted({min(upper, a) for a in ANCHORS}):
        if not run(size, "anchor"):
            break
    if best == 0 and not run(1, "recover"):
        raise ProbeError("micro-batch 1 does not fit in the memory budget")

    while len(result.trials) < max_trials and best < upper:
        if smallest_failure - best <= max(1, int(CLOSE_ENOUGH * best)):
            break
        fit = _fit(measured)
        guess, phase = (best * 4 if fit is None else _predict(fit)), "predict"
        if guess <= best:  # the fit says the best size so far is as far as the budget goes
            break
        if smallest_failure <= upper and guess >= smallest_failure:  # past a known failure: shrink
            guess, phase = best + max(1, (smallest_failure - best) // 2), "recover"
        guess = min(guess, upper, smallest_failure - 1)
        run(guess, "verify" if phase == "predict" and len(measured) >= 2 else phase)
    result.micro_batch = best
    return result
