"""Feeding a GPU: how long each optimizer step waits for its images, with and without the prefetcher.

No GPU here, so the device is simulated: a step "computes" by sleeping a fixed time per batch (default
40 ms per 256 images at 224 px, about what an H100 needs for resnet18 in bf16), during which the GIL is
free, as it is while a real GPU works. Both paths read the same batches (rows sorted into file order)
from the same memory-mapped uint8 cache, side by side in one process:

- inline: the step reads its batch, then computes (the loop before the prefetcher);
- prefetch: galaxy_tui.train.feed.Prefetcher reads the next steps in a thread while the step computes.

Prints per path: data wait per step (time the step spent waiting for its batch), its share of the step
(all steps, and the steady state after each epoch's first step, which must wait for one read: in a real
epoch of hundreds of steps that one wait is negligible), and images per second. Goal: prefetch data
wait <= 5% of the step time.

    python bench/bench_feed.py [--images 8192] [--batch 256] [--step-ms 40] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from galaxy_tui.train.feed import Prefetcher, read_rows

SIZE = 224


def make_cache(folder: Path, count: int) -> np.ndarray:
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(count, SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    for start in range(0, count, 256):
        images[start:start + 256] = rng.integers(0, 255, (min(256, count - start), SIZE, SIZE, 3), dtype=np.uint8)
    images.flush()
    return np.load(folder / "images.npy", mmap_mode="r")


def epoch_steps(count: int, batch: int, epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng(epoch).permutation(count)
    return [np.sort(order[i:i + batch]) for i in range(0, count - batch + 1, batch)]


def run(batches: Iterable[torch.Tensor], steps: int, step_s: float) -> tuple[list[float], float]:
    waits, started = [], time.perf_counter()
    iterator = iter(batches)
    for _ in range(steps):
        asked = time.perf_counter()
        batch = next(iterator)
        waits.append(time.perf_counter() - asked)
        assert batch.shape[1] == 3
        time.sleep(step_s)  # the simulated device computing this step
    return waits, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--step-ms", type=float, default=40.0, help="simulated device time per batch")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    step_s = args.step_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        images = make_cache(Path(tmp), args.images)
        results: dict[str, tuple[list[float], float, int]] = {"inline": ([], 0.0, 0), "prefetch": ([], 0.0, 0)}
        steady: dict[str, list[float]] = {"inline": [], "prefetch": []}  # after each epoch's first step
        ring: list[torch.Tensor] = []  # kept across epochs, as the trainer keeps it
        Prefetcher.warm(images, args.batch, pin=False, ring=ring)  # as the trainer does when it is built
        for epoch in range(args.epochs):  # alternate the two paths, so the machine's noise hits both
            steps = epoch_steps(args.images, args.batch, epoch)
            for name in ("inline", "prefetch"):
                # the feeder starts with its epoch, as in training: no head start
                feeder = Prefetcher(images, steps, pin=False, ring=ring) if name == "prefetch" else None
                batches = feeder if feeder is not None else (read_rows(images, rows) for rows in steps)
                waits, seconds = run(batches, len(steps), step_s)
                if feeder is not None:
                    feeder.close()
                old = results[name]
                results[name] = (old[0] + waits, old[1] + seconds, old[2] + len(steps) * args.batch)
                steady[name] += waits[1:]
    print(f"simulated device: {args.step_ms:g} ms per batch of {args.batch} at {SIZE} px; "
          f"{args.images} images, {args.epochs} epochs (first step of each epoch included)")
    print(f"{'path':<10} {'data wait/step':>15} {'median':>8} {'share of step':>14} {'steady share':>13} "
          f"{'images/s':>9}")
    for name, (waits, seconds, images_done) in results.items():
        mean, later = statistics.fmean(waits), statistics.fmean(steady[name])
        print(f"{name:<10} {mean * 1000:>12.1f} ms {statistics.median(waits) * 1000:>5.1f} ms "
              f"{mean / (mean + step_s):>13.1%} {later / (later + step_s):>12.1%} {images_done / seconds:>9.0f}")
    inline_wait = statistics.fmean(results["inline"][0])
    prefetch_wait = statistics.fmean(results["prefetch"][0])
    speed = (results["prefetch"][2] / results["prefetch"][1]) / (results["inline"][2] / results["inline"][1])
    print(f"prefetch: {inline_wait / max(prefetch_wait, 1e-9):.0f}x less data wait, {speed:.2f}x the images/s; "
          f"goal: data wait <= 5% of the step (steady share: each epoch's first step must wait for one read)")


if __name__ == "__main__":
    main()
