"""Training-loop overhead on CPU: our Trainer (step events, GPU logger thread, device-side loss sums; on
the CPU it reads each batch inline, as the bare loop does) against a bare PyTorch loop doing the same work
(same model, data, batches, augmentation, optimizer), for two models:

- tiny-cnn at 64 px: a realistic small step, where the overhead is a share of the step;
- a near-free model (global average pool + linear) at 32 px: the step is almost nothing but
  bookkeeping, so the difference per step is what our loop adds, in microseconds.

This machine's noise is larger than 5% between runs, so the two loops alternate in many short rounds
(ABBA order, so neither always runs first) and the figures are the median over rounds with the
quartiles. A checkpoint per epoch is timed on its own (an epoch has hundreds of steps; a round has few).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from galaxy_tui.registry import Experiment
from galaxy_tui.train.batches import augment, epoch_order, normalise
from galaxy_tui.train.checkpoint import save_checkpoint
from galaxy_tui.train.device import choose_placement
from galaxy_tui.train.feed import read_rows
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.models import build_model
from galaxy_tui.train.reporting import GpuLogger, Reporter
from galaxy_tui.train.tasks import ClassificationTask

BATCH, STEPS_PER_ROUND, ROUNDS = 64, 8, 24
N = BATCH * STEPS_PER_ROUND


def near_free_model(classes: int) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, classes))


def bare_round(model: nn.Module, optimizer: torch.optim.Optimizer, images: np.ndarray, labels: np.ndarray,
               epoch: int, generator: torch.Generator) -> float:
    model.train()
    order = epoch_order(labels, "none", 0, epoch)
    start = time.perf_counter()
    for i in range(len(order) // BATCH):
        rows = np.sort(order[i * BATCH:(i + 1) * BATCH])
        x = normalise(augment(read_rows(images, rows), generator)).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(labels[rows]).long()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return time.perf_counter() - start


def compare(name: str, make_model: Callable[[int], nn.Module], size: int, run: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (N, size, size, 3), dtype=np.uint8)
    labels = (np.arange(N) % 3).astype(np.int64)
    experiment = Experiment(name="bench", dataset="d", effective_batch=BATCH, sampler="none", scheduler="none",
                            grad_clip=0.0, label_smoothing=0.0)
    reporter = Reporter(run, writes=True)
    logger = GpuLogger(reporter, []).start()
    torch.manual_seed(0)
    ours_model = make_model(3).to(memory_format=torch.channels_last)
    trainer = Trainer(experiment, ours_model, choose_placement("fp32", True, False), images,
                      Split(np.arange(N), labels), ClassificationTask(3, experiment, labels), reporter.emit,
                      STEPS_PER_ROUND)
    trainer.micro_batch = BATCH
    torch.manual_seed(0)
    bare_model = make_model(3).to(memory_format=torch.channels_last)
    bare_optimizer = torch.optim.AdamW(bare_model.parameters(), lr=3e-4, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)

    def ours_round(epoch: int) -> float:
        trainer.progress.step_in_epoch = 0
        start = time.perf_counter()
        trainer.train_epoch(epoch, lambda: False)
        return time.perf_counter() - start

    ours_s, bare_s = [], []
    for round_ in range(ROUNDS + 2):  # the first two rounds warm both up and are not counted
        if round_ % 2:
            bare = bare_round(bare_model, bare_optimizer, images, labels, round_, generator)
            ours = ours_round(round_)
        else:
            ours = ours_round(round_)
            bare = bare_round(bare_model, bare_optimizer, images, labels, round_, generator)
        if round_ >= 2:
            ours_s.append(ours)
            bare_s.append(bare)
    start = time.perf_counter()
    save_checkpoint(run / "last.pt", {"model": ours_model.state_dict(), "optimizer": trainer.optimizer.state_dict()})
    checkpoint_ms = (time.perf_counter() - start) * 1000
    logger.stop()
    reporter.close()

    overheads = sorted(100 * (o / b - 1) for o, b in zip(ours_s, bare_s))
    per_step_us = sorted(1e6 * (o - b) / STEPS_PER_ROUND for o, b in zip(ours_s, bare_s))
    q1, median, q3 = statistics.quantiles(overheads, n=4)
    s1, step_median, s3 = statistics.quantiles(per_step_us, n=4)
    rate = lambda seconds: N / statistics.median(seconds)  # noqa: E731
    print(f"{name}: ours {rate(ours_s):,.0f} samples/s, bare loop {rate(bare_s):,.0f} samples/s; overhead "
          f"median {median:+.1f}% (quartiles {q1:+.1f}% .. {q3:+.1f}%), {step_median:+.0f} us per step "
          f"({s1:+.0f} .. {s3:+.0f}); checkpoint {checkpoint_ms:.0f} ms per epoch")


def main() -> None:
    print(f"{ROUNDS} alternating rounds of {STEPS_PER_ROUND} steps x {BATCH} images, CPU, "
          f"{torch.get_num_threads()} threads")
    for name, make_model, size in (("tiny-cnn 64px", lambda c: build_model("tiny-cnn", c), 64),
                                   ("near-free model 32px", near_free_model, 32)):
        with tempfile.TemporaryDirectory() as tmp:
            compare(name, make_model, size, Path(tmp))


def _busy() -> None:
    while True:
        pass


def sizes_child(sizes: list[int]) -> None:
    """One process's figures (its environment chose the threads' behaviour): tiny-cnn samples/s per size, in
    fewer, shorter rounds than the overhead measurement (the loaded machine is the point, not 1% differences)."""
    global ROUNDS, STEPS_PER_ROUND, N
    ROUNDS, STEPS_PER_ROUND = 4, 4
    N = BATCH * STEPS_PER_ROUND
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            compare(f"tiny-cnn {size}px", lambda c: build_model("tiny-cnn", c), size, Path(tmp))


def sizes_sweep(sizes: list[int], load: int) -> None:
    """Samples/s at each size, ours against the bare loop, idle and beside `load` busy processes, with torch's
    threads as they come and as the worker sets them (galaxy_tui.train.threads)."""
    import multiprocessing
    import os
    import subprocess
    import sys

    from galaxy_tui.executors.local import worker_environment
    for busy in (0, load):
        hogs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(busy)]
        for hog in hogs:
            hog.start()
        try:
            threads = {k: v for k, v in worker_environment(1, dict(os.environ)).items() if "CUDA" not in k}
            for label, env in (("torch's defaults", {}), ("the worker's settings", threads)):
                print(f"\n{busy} busy processes beside it; {label} {env or ''}", flush=True)
                subprocess.run([sys.executable, __file__, "--child", *map(str, sizes)],
                               env={**os.environ, **env}, check=True)
        finally:
            for hog in hogs:
                hog.terminate()


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", help="sweep tiny-cnn over these sizes (e.g. 32 64 96 128)")
    parser.add_argument("--load", type=int, default=2, help="busy processes beside the sweep's loaded half")
    parser.add_argument("--child", type=int, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sizes_child(args.child)
    elif args.sizes:
        sizes_sweep(args.sizes, args.load)
    else:
        main()
