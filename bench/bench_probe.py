"""Micro-batch search on simulated GPU memory: ours vs Lightning's and Accelerate's default searches.

The range is what the app searches: 1..the effective batch (64, 256 or 1024 here), per GPU.
- Lightning-style: `scale_batch_size` in its default "power" mode: start at 2, double while a trial
  fits (3 training steps per trial), stop at the first failure and keep the last size that fitted
  (capped here at the effective batch, as Lightning caps at the dataset's length).
- Accelerate-style: `find_executable_batch_size` with its default start, 128: run training, and on an
  OOM retry at 90% of the size (older releases halve). It never tries above its start.
Every method searches against the same limit, the app's budget: 90% of what is free once the CUDA
context exists. A "GPU" here is a memory model: weights + optimizer state (fixed), activations per
sample (linear, or convex), a fixed CUDA context invisible to the peak statistics, allocations rounded
to 2 MiB blocks and the reserved total to 20 MiB segments; "noisy" adds +/-3% that is fixed per case
and size (so the true maximum is not a lucky draw), "spike" a warm-up step 10% above the steady peak,
"step" 0.5 GiB more above 300 samples (an algorithm switch).
Cost is reported in sample-steps (trial size x steps run; an OOM costs the one step it died in), the
work a search spends before training starts; Accelerate's successful size is the training itself, so
only its failures count.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from galaxy_tui.train.probe_search import TrialOutcome, search_micro_batch

GIB, MIB = 1 << 30, 1 << 20
KINDS = ("affine", "convex", "noisy", "spike", "step")
CAPACITIES_GIB = (4, 6, 8, 12, 16, 24, 40, 80)
UPPERS = (64, 256, 1024)
MODELS = ((0.3 * GIB, 6 * MIB), (1.2 * GIB, 24 * MIB))  # (weights + optimizer, activations per sample)
CONTEXT = int(0.45 * GIB)
MARGIN = 0.10
STEPS_PER_TRIAL = 3  # ours: a warm-up step + 2 measured; Lightning's default steps_per_trial


@dataclass(frozen=True)
class SimulatedGpu:
    kind: str
    capacity: int
    fixed: float
    per_sample: float

    @property
    def budget(self) -> int:
        return int((self.capacity - CONTEXT) * (1 - MARGIN))

    def _noise(self, b: int) -> float:
        if self.kind != "noisy":
            return 0.0
        digest = hashlib.sha256(f"{self.capacity}:{self.fixed}:{b}".encode()).digest()
        return (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 0.06

    def peak(self, b: int) -> int:
        """What the peak statistics report for a steady training step at micro-batch b."""
        activations = self.per_sample * b * (1 + (b / 400 if self.kind == "convex" else 0))
        activations *= 1 + self._noise(b)
        blocks = math.ceil(activations / (2 * MIB)) * 2 * MIB
        extra = 0.5 * GIB if self.kind == "step" and b > 300 else 0
        return math.ceil((self.fixed + blocks + extra) / (20 * MIB)) * 20 * MIB

    def warmup_peak(self, b: int) -> int:
        return int(self.peak(b) * (1.1 if self.kind == "spike" else 1.0))

    def fits(self, b: int) -> bool:
        return self.warmup_peak(b) <= self.budget

    def true_max(self, upper: int) -> int:
        return max((b for b in range(1, upper + 1) if self.fits(b)), default=0)


@dataclass
class Outcome:
    found: int
    trials: int
    sample_steps: int


def ours(gpu: SimulatedGpu, upper: int) -> Outcome:
    cost = 0

    def trial(b: int) -> TrialOutcome:
        nonlocal cost
        if gpu.warmup_peak(b) > gpu.budget:
            cost += b
            raise torch.cuda.OutOfMemoryError(f"simulated OOM at {b}")
        cost += STEPS_PER_TRIAL * b
        return TrialOutcome(True, gpu.peak(b), 0.0)

    result = search_micro_batch(trial, lambda: gpu.budget, upper, oom_errors=(torch.cuda.OutOfMemoryError,))
    return Outcome(result.micro_batch, len(result.trials), cost)


def lightning_power(gpu: SimulatedGpu, upper: int) -> Outcome:
    size, last_fit, trials, cost = 2, 0, 0, 0
    while trials < 25:  # Lightning's default max_trials
        trials += 1
        if not gpu.fits(size):
            cost += size
            break
        cost += STEPS_PER_TRIAL * size
        last_fit = size
        if size >= upper:
            break
        size = min(upper, size * 2)
    return Outcome(last_fit, trials, cost)


def accelerate_default(gpu: SimulatedGpu, upper: int) -> Outcome:
    size, trials, cost = min(128, upper), 0, 0
    while size > 0:
        trials += 1
        if gpu.fits(size):
            return Outcome(size, trials, cost)
        cost += size
        size = int(size * 0.9)
    return Outcome(0, trials, cost)


METHODS: dict[str, Callable[[SimulatedGpu, int], Outcome]] = {
    "ours": ours, "lightning power": lightning_power, "accelerate (128)": accelerate_default}


def main() -> None:
    results: dict[str, list[tuple[Outcome, int]]] = {name: [] for name in METHODS}
    for kind in KINDS:
        for capacity in CAPACITIES_GIB:
            for fixed, per_sample in MODELS:
                gpu = SimulatedGpu(kind, capacity * GIB, fixed, per_sample)
                for upper in UPPERS:
                    true = gpu.true_max(upper)
                    if true == 0:
                        continue
                    for name, method in METHODS.items():
                        results[name].append((method(gpu, upper), true))
    cases = len(results["ours"])
    print(f"{cases} cases: {len(KINDS)} memory models x {len(CAPACITIES_GIB)} GPU sizes x {len(MODELS)} models "
          f"x effective batch {', '.join(map(str, UPPERS))}")
    print(f"{'method':17} {'trials':>7} {'max':>4} {'sample-steps':>13} {'found/true':>10} {'min':>6} "
          f"{'over true':>9}")
    cost_of = {}
    for name, rows in results.items():
        ratios = [o.found / true for o, true in rows]
        cost_of[name] = statistics.mean(o.sample_steps for o, _ in rows)
        print(f"{name:17} {statistics.mean(o.trials for o, _ in rows):7.1f} {max(o.trials for o, _ in rows):4d} "
              f"{cost_of[name]:13,.0f} {statistics.mean(ratios):10.3f} {min(ratios):6.3f} "
              f"{sum(r > 1 for r in ratios):9d}")
    print("sample-steps relative to ours: " + ", ".join(
        f"{name} {cost_of[name] / cost_of['ours']:.2f}x" for name in METHODS if name != "ours"))


if __name__ == "__main__":
    main()
