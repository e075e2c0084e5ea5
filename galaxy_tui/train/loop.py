"""The training loop: micro-batches accumulated to an effective batch, OOM spikes re-split, the probe's trials."""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from torch import nn

from galaxy_tui.registry import Experiment
from galaxy_tui.train.batches import augment, class_weights, epoch_order, gather, normalise
from galaxy_tui.train.device import Placement
from galaxy_tui.train.probe_search import TrialOutcome

Emit = Callable[..., None]
STEP_EVENT_INTERVAL_S = 0.5


class RunFailed(Exception):
    """The run cannot go on (e.g. out of memory at micro-batch 1); the message is for the user."""


@dataclass
class Split:
    indices: np.ndarray   # rows of the prepared image array
    labels: np.ndarray


@dataclass
class Progress:
    epoch: int = 0             # epochs completed
    step: int = 0              # optimizer steps completed in total
    step_in_epoch: int = 0     # optimizer steps completed in the current epoch
    best_metric: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0


class OomInjector:
    """Test seam: raise torch.cuda.OutOfMemoryError at chosen optimizer steps when the micro-batch is
    larger than `below`, simulating a spike. Set from GALAXY_TUI_INJECT_OOM="step[,step...]:below"."""

    def __init__(self, spec: str = ""):
        steps, _, below = spec.partition(":")
        self.steps = {int(s) for s in steps.split(",") if s.strip()}
        self.below = int(below or 1 << 30)

    def check(self, step: int, micro_batch: int) -> None:
        if step in self.steps and micro_batch > self.below:
            raise torch.cuda.OutOfMemoryError(f"injected OOM spike at step {step}, micro-batch {micro_batch}")


class Trainer:
    def __init__(self, experiment: Experiment, model: nn.Module, placement: Placement, images: np.ndarray,
                 train: Split, num_classes: int, emit: Emit, steps_per_epoch: int,
                 rank: int = 0, world: int = 1, ddp_model: nn.Module | None = None):
        self.exp = experiment
        self.model = model
        self.net = ddp_model or model  # what forward/backward go through (DDP wrapper when distributed)
        self.placement = placement
        self.images = images
        self.train = train
        self.emit = emit
        self.rank, self.world = rank, world
        self.num_classes = num_classes
        self.steps_per_epoch = steps_per_epoch
        self.micro_batch = 1
        self.progress = Progress()
        self.generator = torch.Generator().manual_seed(experiment.seed * 1000 + rank)
        self.inject = OomInjector(os.environ.get("GALAXY_TUI_INJECT_OOM", ""))
        weight = class_weights(train.labels, num_classes) if experiment.sampler == "class-weights" else None
        self.loss_weight = weight.to(placement.device) if weight is not None else None
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.scaler = torch.amp.GradScaler(placement.device.type, enabled=placement.use_scaler)

    # ------------------------------------------------------------------ setup
    def _optimizer(self) -> torch.optim.Optimizer:
        params = self.model.parameters()
        if self.exp.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.exp.lr, momentum=self.exp.momentum,
                                   weight_decay=self.exp.weight_decay, nesterov=True)
        return torch.optim.AdamW(params, lr=self.exp.lr, weight_decay=self.exp.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
        if self.exp.scheduler == "cosine":
            total = max(1, self.exp.epochs * self.steps_per_epoch)
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=self.exp.lr, total_steps=total,
                                                       pct_start=0.15, anneal_strategy="cos")
        if self.exp.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5, patience=2)
        return None

    @property
    def accumulation(self) -> int:
        return math.ceil(self.per_rank_batch / self.micro_batch)

    @property
    def per_rank_batch(self) -> int:
        return max(1, self.exp.effective_batch // self.world)

    # ------------------------------------------------------------------ one optimizer step
    def _inputs(self, rows: np.ndarray, training: bool) -> torch.Tensor:
        # uint8 crosses to the device (a quarter of the bytes of float), augmentation runs there
        batch = gather(self.images, rows).to(self.placement.device, non_blocking=True)
        if training and self.exp.augment:
            batch = augment(batch, self.generator)
        x = normalise(batch)
        if self.placement.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _accumulate(self, rows: np.ndarray, labels: np.ndarray, micro: int, step: int) -> float:
        """Forward/backward over `rows` in micro-batches of `micro`, gradients summed as one batch."""
        total = len(rows)
        loss_sum = torch.zeros((), device=self.placement.device)
        chunks = range(0, total, micro)
        for n, start in enumerate(chunks):
            self.inject.check(step, micro)
            x = self._inputs(rows[start:start + micro], training=True)
            y = torch.from_numpy(labels[start:start + micro]).long().to(self.placement.device)
            last = n == len(chunks) - 1
            sync = contextlib.nullcontext() if last or self.net is self.model else self.net.no_sync()
            with sync:
                with self.placement.autocast():
                    logits = self.net(x)
                    loss = F.cross_entropy(logits.float(), y, weight=self.loss_weight,
                                           label_smoothing=self.exp.label_smoothing)
                self.scaler.scale(loss * (len(y) / total)).backward()
            loss_sum += loss.detach() * len(y)
        return float(loss_sum) / total  # one device sync per optimizer step, not per micro-batch

    def optimizer_step(self, rows: np.ndarray, labels: np.ndarray) -> float:
        """One optimizer step over this batch. On an OOM spike the same batch is re-split into smaller
        micro-batches (more accumulation): effective batch, step count and data order are unchanged."""
        step = self.progress.step + 1
        while True:
            self.optimizer.zero_grad(set_to_none=True)
            failed = False
            try:
                loss = self._accumulate(rows, labels, self.micro_batch, step)
            except torch.cuda.OutOfMemoryError:
                failed = True
            if not failed:
                break
            # Freed outside the except block: the exception's traceback holds the step's tensors.
            self.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            if self.placement.device.type == "cuda":
                torch.cuda.empty_cache()
            if self.micro_batch == 1:
                raise RunFailed(f"out of memory at step {step} even with micro-batch 1; use a smaller model "
                                f"or image_size, or free the GPU")
            before = self.micro_batch
            self.micro_batch = max(1, before // 2)
            self.emit("oom", step=step, micro_batch_before=before, micro_batch_after=self.micro_batch,
                      accumulation=self.accumulation)
        if self.exp.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.exp.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.OneCycleLR) and \
                self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
            self.scheduler.step()
        self.progress.step = step
        if self.world > 1:  # a spike on one rank shrinks every rank's micro-batch: they keep agreeing
            agreed = torch.tensor([self.micro_batch])
            torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MIN)
            self.micro_batch = int(agreed.item())
        return loss

    # ------------------------------------------------------------------ epochs
    def batches_of_epoch(self, epoch: int) -> list[np.ndarray]:
        """Positions into the train split for each optimizer step of this epoch (this rank's share)."""
        order = epoch_order(self.train.labels, self.exp.sampler, self.exp.seed, epoch)
        size = self.per_rank_batch * self.world
        steps = len(order) // size or 1
        if self.exp.max_steps_per_epoch:
            steps = min(steps, self.exp.max_steps_per_epoch)
        return [order[i * size:(i + 1) * size][self.rank::self.world] for i in range(steps)]

    def train_epoch(self, epoch: int, after_step: Callable[[], bool]) -> tuple[float, bool]:
        """Train from progress.step_in_epoch to the end of the epoch; `after_step` returns True to stop.
        Returns (mean loss, stopped early)."""
        self.model.train()
        losses: list[float] = []
        last_event, window_start, window_samples = 0.0, time.perf_counter(), 0
        batches = self.batches_of_epoch(epoch)
        for i in range(self.progress.step_in_epoch, len(batches)):
            positions = batches[i]
            loss = self.optimizer_step(self.train.indices[positions], self.train.labels[positions])
            losses.append(loss)
            self.progress.step_in_epoch = i + 1
            window_samples += len(positions) * self.world
            now = time.perf_counter()
            if now - last_event >= STEP_EVENT_INTERVAL_S or i == len(batches) - 1:
                rate = window_samples / max(now - window_start, 1e-9)
                self.emit("step", epoch=epoch, step=self.progress.step, loss=round(loss, 5),
                          lr=self.optimizer.param_groups[0]["lr"], samples_per_s=round(rate, 1),
                          step_in_epoch=i + 1, steps_per_epoch=len(batches))
                last_event, window_start, window_samples = now, now, 0
            if after_step():
                return (float(np.mean(losses)) if losses else float("nan")), True
        return (float(np.mean(losses)) if losses else float("nan")), False

    @torch.no_grad()
    def predict(self, split: Split, batch: int = 256) -> tuple[float, np.ndarray]:
        """Mean loss and class probabilities over a split (in its order)."""
        self.model.eval()
        probabilities, loss_sum = [], 0.0
        for start in range(0, len(split.indices), batch):
            rows = split.indices[start:start + batch]
            x = self._inputs(rows, training=False)
            y = torch.from_numpy(split.labels[start:start + batch]).long().to(self.placement.device)
            with self.placement.autocast():
                logits = self.model(x).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            probabilities.append(torch.softmax(logits, 1).cpu().numpy())
        return loss_sum / max(1, len(split.indices)), np.concatenate(probabilities)

    # ------------------------------------------------------------------ the probe's trial
    def probe_trial(self, size: int) -> TrialOutcome:
        """Run real optimizer steps at micro-batch `size` (same precision, memory format, optimizer),
        restore weights and optimizer state afterwards, and report the peak memory."""
        model_state = copy.deepcopy(self.model.state_dict())
        optim_state = copy.deepcopy(self.optimizer.state_dict())
        rng = np.random.default_rng(size)
        rows = self.train.indices[rng.integers(0, len(self.train.indices), size)]
        labels = self.train.labels[rng.integers(0, len(self.train.labels), size)]
        started = time.perf_counter()
        meter = PeakMemory(self.placement)
        fits = True
        try:
            self.model.train()
            self._trial_step(rows, labels)  # warm-up: allocates optimizer state, picks kernels
            meter.start()
            for _ in range(2):
                self._trial_step(rows, labels)
            peak = meter.stop()
        except torch.cuda.OutOfMemoryError:
            fits, peak = False, None
        meter.stop()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optim_state)
        gc.collect()
        if self.placement.device.type == "cuda":
            torch.cuda.empty_cache()
        return TrialOutcome(fits, peak, time.perf_counter() - started)

    def _trial_step(self, rows: np.ndarray, labels: np.ndarray) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._accumulate(rows, labels, len(rows), step=-1)
        self.scaler.step(self.optimizer)
        self.scaler.update()


class PeakMemory:
    """Peak memory over a stretch of work: CUDA's own peak statistics, or on CPU the process RSS
    sampled every 2 ms in a thread (the OS keeps no resettable high-water mark)."""

    def __init__(self, placement: Placement):
        self.cuda = placement.device.type == "cuda"
        self.device = placement.device
        self._peak = 0
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        process = psutil.Process(os.getpid())
        self._peak = process.memory_info().rss
        self._running.set()

        def sample() -> None:
            while self._running.is_set():
                self._peak = max(self._peak, process.memory_info().rss)
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_reserved(self.device))
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return int(self._peak)
