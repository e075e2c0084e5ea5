"""The checks that train: precision (on a GPU), the real micro-batch probe, throughput from a memory-mapped cache
(the prefetch feed against an inline read, channels_last on and off) and recovery from an out-of-memory error
forced by the injection seam. They build the workbench's own Trainer, so they measure what a run will do."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from galaxy_tui.doctor.report import FAIL, NEEDS_GPU, PASS, SKIP, Check
from galaxy_tui.registry import Experiment
from galaxy_tui.train.device import choose_placement, memory_budget, native_bf16
from galaxy_tui.train.feed import Inline, Prefetcher
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.models import build_model
from galaxy_tui.train.probe_search import ProbeError, search_micro_batch
from galaxy_tui.train.tasks import ClassificationTask

GIB = 2**30
PROBE_MODEL, PROBE_SIZE = "resnet18", 224


def _cache(folder: Path, count: int, size: int) -> np.ndarray:
    """A memory-mapped image cache as a run's (N x size x size x 3 uint8 on disk), filled with noise."""
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    rng = np.random.default_rng(0)
    for start in range(0, count, 256):
        images[start:start + 256] = rng.integers(0, 255, images[start:start + 256].shape, dtype=np.uint8)
    images.flush()
    return np.load(folder / "images.npy", mmap_mode="r")


def split_invariant_net() -> nn.Module:
    """A small network whose step does not depend on how its batch is split (no batch norm, no dropout)."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3))


def trainer_for(images: np.ndarray, model: str | Callable[[], nn.Module], experiment: Experiment,
                seed: int = 0) -> Trainer:
    placement = choose_placement(experiment.precision, experiment.channels_last, experiment.tf32)
    torch.manual_seed(seed)
    network = (build_model(model, 3) if isinstance(model, str) else model()).to(placement.device)
    if placement.channels_last:
        network = network.to(memory_format=torch.channels_last)
    labels = np.arange(len(images)) % 3
    return Trainer(experiment, network, placement, images, Split(np.arange(len(images)), labels),
                   ClassificationTask(3, experiment, labels), lambda *_a, **_f: None,
                   steps_per_epoch=max(1, len(images) // experiment.effective_batch))


def _experiment(**keys: Any) -> Experiment:
    return Experiment(name="doctor", dataset="doctor", **{"augment": False, "grad_clip": 0.0, "scheduler": "none",
                                                          "sampler": "none", "label_smoothing": 0.0, **keys})


def precision(on_gpu: bool) -> Check:
    """auto is bf16 only where it is native (capability 8.0 on); a few steps in each precision give finite losses
    that agree."""
    if not on_gpu:
        return Check("precision", SKIP, NEEDS_GPU)
    device = torch.device("cuda", 0)
    capability = torch.cuda.get_device_capability(device)
    auto = choose_placement("auto", True, True).precision
    expected = "bf16" if native_bf16(device) else "fp16"
    tf32 = torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    choose_placement("auto", True, False)
    tf32_off = not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    losses = {}
    with tempfile.TemporaryDirectory() as folder:
        images = _cache(Path(folder), 64, 64)
        for name in ("fp32", "bf16", "fp16"):
            trainer = trainer_for(images, "tiny-cnn", _experiment(precision=name, effective_batch=16, image_size=64,
                                                                  tf32=False))
            trainer.micro_batch = 16
            losses[name] = [float(trainer.optimizer_step(np.arange(16 * k, 16 * k + 16), np.arange(16) % 3))
                            for k in range(3)]
    finite = all(math.isfinite(v) for values in losses.values() for v in values)
    spread = max(abs(a - b) / max(abs(b), 1e-6) for name in ("bf16", "fp16")
                 for a, b in zip(losses[name], losses["fp32"]))
    figures = {"capability": f"{capability[0]}.{capability[1]}", "auto": auto, "expected_auto": expected,
               "tf32_on": tf32, "tf32_off_honoured": tf32_off, "losses": losses, "largest_relative_gap": spread}
    problems = ([f"auto chose {auto}, expected {expected} at capability {capability[0]}.{capability[1]}"]
                if auto != expected else []) + ([] if tf32 and tf32_off else ["the TF32 switches were not as set"]) \
        + ([] if finite else ["a loss was not finite"]) + ([] if spread < 0.05 else
                                                          [f"bf16/fp16 losses differ from fp32 by {spread:.1%}"])
    return Check("precision", FAIL if problems else PASS, "; ".join(problems) or
                 f"auto is {auto} at capability {capability[0]}.{capability[1]}; TF32 as asked; 3 steps in fp32, "
                 f"bf16 and fp16 agree within {spread:.2%}", figures)


def probe(quick: bool) -> Check:
    """The real micro-batch search, as a run does it, for resnet18 at 224 px."""
    on_gpu = torch.cuda.is_available()
    effective = (256 if not quick else 128) if on_gpu else (32 if not quick else 8)
    with tempfile.TemporaryDirectory() as folder:
        images = _cache(Path(folder), effective, PROBE_SIZE)
        experiment = _experiment(effective_batch=effective, image_size=PROBE_SIZE, precision="auto")
        trainer = trainer_for(images, PROBE_MODEL, experiment)
        budget = memory_budget(trainer.placement, experiment.vram_margin)
        try:
            result = search_micro_batch(trainer.probe_trial, lambda: budget, effective)
        except ProbeError as exc:
            return Check("probe", FAIL, f"{exc}: budget {budget / GIB:.2f} GiB", {"budget_gib": budget / GIB})
    trials = [{"micro_batch": t.micro_batch, "fits": t.fits, "peak_gib": None if t.peak_bytes is None
               else round(t.peak_bytes / GIB, 3), "seconds": round(t.seconds, 2)} for t in result.trials]
    peak = max((t.peak_bytes or 0) for t in result.trials if t.fits and t.micro_batch == result.micro_batch)
    figures = {"model": f"{PROBE_MODEL} {PROBE_SIZE} px", "device": str(trainer.placement.device),
               "precision": trainer.placement.precision, "effective_batch": effective,
               "micro_batch": result.micro_batch, "peak_gib": round(peak / GIB, 3),
               "budget_gib": round(budget / GIB, 3), "trials": trials}
    within = peak <= budget
    return Check("probe", PASS if within else FAIL,
                 f"micro-batch {result.micro_batch} of {effective} in {len(trials)} trials, peak {peak / GIB:.2f} "
                 f"of {budget / GIB:.2f} GiB" + ("" if within else ": the peak is over the budget"), figures)


@contextmanager
def _feeding(trainer: Trainer, prefetch: bool, steps: list[np.ndarray]) -> Iterator[Any]:
    pin = trainer.placement.device.type == "cuda"
    feeder = Prefetcher(trainer.images, steps, pin=pin) if prefetch else Inline(trainer.images, steps)
    try:
        yield feeder
    finally:
        feeder.close()


def _throughput(trainer: Trainer, prefetch: bool, steps: int) -> dict[str, float]:
    """Images/s over `steps` optimizer steps after one warm-up, and the share of the time spent waiting for data."""
    batch = trainer.per_rank_batch
    order = [np.arange(i * batch, (i + 1) * batch) % len(trainer.images) for i in range(steps + 1)]
    labels = np.arange(batch) % 3
    waited, started = 0.0, 0.0
    with _feeding(trainer, prefetch, order) as feeder:
        batches = iter(feeder)
        for index in range(steps + 1):
            before = time.perf_counter()
            images = next(batches)
            if index:
                waited += time.perf_counter() - before
            loss = trainer.optimizer_step(order[index], labels, images)
            if index == 0:
                float(loss)  # the warm-up step's kernels are chosen: time from here
                started = time.perf_counter()
        float(loss)
    seconds = time.perf_counter() - started
    return {"images_per_s": round(steps * batch / seconds, 1), "data_wait_pct": round(100 * waited / seconds, 1)}


def rate(measured: dict[str, float]) -> str:
    value = measured["images_per_s"]
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def throughput(quick: bool) -> Check:
    """resnet18 at 224 px from a memory-mapped cache: the prefetch feed and an inline read, side by side, and
    (not --quick) channels_last off against on."""
    on_gpu = torch.cuda.is_available()
    batch, steps = (64, 10 if quick else 30) if on_gpu else (2 if quick else 8, 1 if quick else 3)
    figures: dict[str, Any] = {"model": f"{PROBE_MODEL} {PROBE_SIZE} px", "batch": batch, "steps": steps}
    with tempfile.TemporaryDirectory() as folder:
        images = _cache(Path(folder), batch * 4, PROBE_SIZE)
        experiment = _experiment(effective_batch=batch, image_size=PROBE_SIZE, precision="auto")
        trainer = trainer_for(images, PROBE_MODEL, experiment)
        trainer.micro_batch = batch
        figures["device"], figures["precision"] = str(trainer.placement.device), trainer.placement.precision
        figures["prefetch"] = _throughput(trainer, True, steps)
        figures["inline"] = _throughput(trainer, False, steps)
        if not quick:
            plain = trainer_for(images, PROBE_MODEL, replace(experiment, channels_last=False))
            plain.micro_batch = batch
            figures["channels_last_off"] = _throughput(plain, True, steps)
    fast, slow = figures["prefetch"], figures["inline"]
    ratio = fast["images_per_s"] / max(slow["images_per_s"], 1e-9)
    figures["prefetch_vs_inline"] = round(ratio, 2)
    summary = (f"{rate(fast)} images/s with the prefetch feed (data wait {fast['data_wait_pct']:.0f}% of the time), "
               f"{rate(slow)}/s reading inline ({slow['data_wait_pct']:.0f}%)")
    if "channels_last_off" in figures:
        summary += f"; channels_last off: {rate(figures['channels_last_off'])}/s"
    return Check("throughput", PASS, summary, figures)


def oom_recovery() -> Check:
    """An out-of-memory error forced by the injection seam at step 2 of 3, on this device: the step is re-split
    and the weights equal those of the same steps unsplit (in a network without batch norm or dropout, whose
    step does not depend on how the batch is split)."""
    steps, batch = 3, 32
    with tempfile.TemporaryDirectory() as folder:
        images = _cache(Path(folder), steps * batch, 32)
        experiment = _experiment(effective_batch=batch, image_size=32, precision="fp32", channels_last=False)
        results = []
        for inject in ("", "steps=2 below=8"):
            os.environ["GALAXY_TUI_INJECT_OOM"] = inject
            try:
                events: list[tuple[str, dict]] = []
                trainer = trainer_for(images, split_invariant_net, experiment)
                trainer.emit = lambda kind, **fields: events.append((kind, fields))
                trainer.micro_batch = 16
                for step in range(steps):
                    trainer.optimizer_step(np.arange(step * batch, (step + 1) * batch), np.arange(batch) % 3)
                results.append((trainer, events))
            finally:
                os.environ.pop("GALAXY_TUI_INJECT_OOM", None)
    (clean, _), (split, events) = results
    ooms = [fields for kind, fields in events if kind == "oom"]
    gap = max(float((a - b).detach().abs().max()) for a, b in zip(clean.model.parameters(), split.model.parameters()))
    figures = {"device": str(split.placement.device), "oom_events": ooms, "micro_batch_after": split.micro_batch,
               "largest_weight_difference": gap}
    if not ooms:
        return Check("oom recovery", FAIL, "the injected out-of-memory error was not seen", figures)
    if gap > 1e-5:
        return Check("oom recovery", FAIL, f"after the re-split the weights differ from the unsplit step's by "
                                           f"{gap:.2e}", figures)
    return Check("oom recovery", PASS, f"an out-of-memory error at step 2 re-split micro-batch 16 into "
                                       f"{split.micro_batch}; the weights equal the unsplit steps' (within {gap:.1e})",
                 figures)
