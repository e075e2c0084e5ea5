"""Micro-batch search on simulated GPU memory: ours vs a Lightning-style power-then-binary search and an
Accelerate-style 0.9x decay, on the same memory models (affine, convex, noisy, warm-up spike, step).

Each simulated trial raises torch.cuda.OutOfMemoryError when the step would not fit in the GPU. The
true maximum is the largest size whose peak stays within the budget (90% of the GPU). Prints trials
used and found/true per method; a found size above the true maximum would have risked an OOM later.
"""

from __future__ import annotations

import random
import statistics

import torch

from galaxy_tui.train.probe_search import TrialOutcome, search_micro_batch

GIB = 1 << 30
KINDS = ("affine", "convex", "noisy", "spike", "step")
CAPACITIES = (1.4, 2, 3, 5, 8, 12, 16, 24, 40, 80)
UPPER = 4096


def memory(kind: str, capacity: int, seed: int):  # noqa: ANN201
    rnd = random.Random(seed)

    def peak(b: int) -> int:
        value = 1.2 * GIB + 3e6 * b + (2000 * b * b if kind == "convex" else 0)
        value *= 1 + (rnd.uniform(-0.03, 0.03) if kind == "noisy" else 0)
        return int(value + (0.5 * GIB if kind == "step" and b > 300 else 0))

    def fits(b: int) -> bool:
        p = peak(b)
        return p * (1.1 if kind == "spike" else 1.0) <= capacity and p <= capacity

    return peak, fits


def lightning_style(fits, budget_fits) -> tuple[int, int]:  # noqa: ANN001
    """Double until a failure, then binary search; 3 steps per trial in Lightning, counted here as one."""
    trials, size, low, high = 0, 2, 0, None
    while True:
        trials += 1
        if budget_fits(size):
            low = size
            if size >= UPPER:
                break
            size = min(UPPER, size * 2)
            if high is None:
                continue
        else:
            high = size
        if high is not None:
            if high - low <= 1:
                break
            size = (low + high) // 2
    return max(1, int(low * 0.95)), trials  # Lightning shaves a margin off the found size


def accelerate_style(budget_fits) -> tuple[int, int]:  # noqa: ANN001
    trials, size = 0, UPPER
    while size > 1:
        trials += 1
        if budget_fits(size):
            return size, trials
        size = int(size * 0.9)
    return 1, trials + 1


def main() -> None:
    rows = {"ours": [], "lightning-style": [], "accelerate-style": []}
    for kind in KINDS:
        for capacity_gib in CAPACITIES:
            capacity = int(capacity_gib * GIB)
            budget = int(capacity * 0.9)
            peak, fits = memory(kind, capacity, seed=1)
            true_max = max((b for b in range(1, UPPER + 1) if fits(b) and peak(b) <= budget), default=0)
            if true_max == 0:
                continue

            def within_budget(b: int) -> bool:
                return fits(b) and peak(b) <= budget

            def trial(b: int) -> TrialOutcome:
                if not fits(b):
                    raise torch.cuda.OutOfMemoryError(f"simulated OOM at {b}")
                return TrialOutcome(True, peak(b), 0.0)

            ours = search_micro_batch(trial, budget, UPPER, oom_errors=(torch.cuda.OutOfMemoryError,))
            rows["ours"].append((len(ours.trials), ours.micro_batch / true_max))
            found, trials = lightning_style(fits, within_budget)
            rows["lightning-style"].append((trials, found / true_max))
            found, trials = accelerate_style(within_budget)
            rows["accelerate-style"].append((trials, found / true_max))
    print(f"{len(rows['ours'])} cases (5 memory models x GPU sizes), true maximum in 1..{UPPER}:")
    print(f"{'method':18} {'trials mean':>11} {'trials max':>10} {'found/true mean':>15} {'min':>6} {'over true':>9}")
    for method, values in rows.items():
        trials = [t for t, _ in values]
        ratios = [r for _, r in values]
        print(f"{method:18} {statistics.mean(trials):11.1f} {max(trials):10d} {statistics.mean(ratios):15.3f} "
              f"{min(ratios):6.3f} {sum(r > 1 for r in ratios):9d}")
    ours_trials = statistics.mean(t for t, _ in rows["ours"])
    print(f"ours uses {statistics.mean(t for t, _ in rows['lightning-style']) / ours_trials:.1f}x fewer trials than "
          f"lightning-style and {statistics.mean(t for t, _ in rows['accelerate-style']) / ours_trials:.1f}x fewer "
          f"than accelerate-style")


if __name__ == "__main__":
    main()
