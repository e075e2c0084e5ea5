"""Steady-state training throughput on CPU: our Trainer (events, GPU logger, checkpoints each epoch)
against a bare PyTorch loop doing the same work (same model, data, batches, augmentation, optimizer).

Epochs alternate between the two so machine noise hits both; prints samples/s and the overhead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from galaxy_tui.registry import Experiment
from galaxy_tui.train.batches import augment, epoch_order, normalise
from galaxy_tui.train.checkpoint import save_checkpoint
from galaxy_tui.train.device import choose_placement
from galaxy_tui.train.feed import read_rows
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.models import build_model
from galaxy_tui.train.reporting import GpuLogger, Reporter

N, SIZE, BATCH, ROUNDS = 2048, 64, 64, 4


def bare_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: np.ndarray, labels: np.ndarray,
               epoch: int, generator: torch.Generator) -> float:
    model.train()
    order = epoch_order(labels, "none", 0, epoch)
    start = time.perf_counter()
    for i in range(len(order) // BATCH):
        rows = order[i * BATCH:(i + 1) * BATCH]
        x = normalise(augment(read_rows(images, np.sort(rows)), generator))
        x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(labels[rows]).long()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (len(order) // BATCH) * BATCH / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (N, SIZE, SIZE, 3), dtype=np.uint8)
    labels = (np.arange(N) % 3).astype(np.int64)
    experiment = Experiment(name="bench", dataset="d", effective_batch=BATCH, sampler="none", scheduler="none",
                            grad_clip=0.0, label_smoothing=0.0)
    placement = choose_placement("fp32", True, False)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        reporter = Reporter(run, writes=True)
        logger = GpuLogger(reporter).start()
        torch.manual_seed(0)
        ours_model = build_model("tiny-cnn", 3).to(memory_format=torch.channels_last)
        trainer = Trainer(experiment, ours_model, placement, images, Split(np.arange(N), labels), 3,
                          reporter.emit, N // BATCH)
        trainer.micro_batch = BATCH
        torch.manual_seed(0)
        bare_model = build_model("tiny-cnn", 3).to(memory_format=torch.channels_last)
        bare_optimizer = torch.optim.AdamW(bare_model.parameters(), lr=3e-4, weight_decay=1e-2)
        generator = torch.Generator().manual_seed(0)
        ours_rates, bare_rates = [], []
        for epoch in range(ROUNDS + 1):  # the first round warms both up and is not counted
            trainer.progress.step_in_epoch = 0
            start = time.perf_counter()
            trainer.train_epoch(epoch, lambda: False)
            save_checkpoint(run / "last.pt", {"model": ours_model.state_dict(),
                                              "optimizer": trainer.optimizer.state_dict()})
            reporter.update(state="training", epoch=epoch)
            ours = (N // BATCH) * BATCH / (time.perf_counter() - start)
            bare = bare_epoch(bare_model, bare_optimizer, images, labels, epoch, generator)
            if epoch:
                ours_rates.append(ours)
                bare_rates.append(bare)
        logger.stop()
        reporter.close()
        events = sum(1 for _ in open(run / "events.jsonl"))
    ours, bare = float(np.median(ours_rates)), float(np.median(bare_rates))
    print(f"tiny-cnn {SIZE}px batch {BATCH} on CPU ({torch.get_num_threads()} threads): ours {ours:.0f} samples/s "
          f"(with {events} events, a checkpoint per epoch), bare loop {bare:.0f} samples/s, "
          f"overhead {100 * (1 - ours / bare):+.1f}% (median of {ROUNDS} alternating epochs)")


if __name__ == "__main__":
    main()
