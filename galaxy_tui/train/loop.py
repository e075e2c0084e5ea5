"""The training loop: micro-batches accumulated to an effective batch, OOM spikes re-split, the probe's trials."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from galaxy_tui.registry import Experiment
from galaxy_tui.train.batches import augment, epoch_order, normalise
from galaxy_tui.train.device import Placement, make_scaler, restore_rng_states, rng_states
from galaxy_tui.train.distributed import Collectives, Topology
from galaxy_tui.train.feed import Inline, Prefetcher, read_rows
from galaxy_tui.train.finetune import FinetunePlan
from galaxy_tui.train.memory import PeakMemory, cpu_copy
from galaxy_tui.train.oom import OomInjector, is_out_of_memory, release_memory
from galaxy_tui.train.probe_search import TrialOutcome
from galaxy_tui.train.tasks import Task
from galaxy_tui.train.views import dihedral_views

Emit = Callable[..., None]
STEP_EVENT_INTERVAL_S = 0.5

# The share of the steps spent climbing to the peak rate: "cosine" warms up briefly, "onecycle" is Smith's
# one-cycle policy (30%, from a 25th of the peak; torch's defaults, momentum cycling included).
WARM_UP = {"cosine": 0.15, "onecycle": 0.3}


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
    best_metric: float | None = None  # the task's validation score at its best epoch (None: none yet)
    best_epoch: int = 0
    stale_epochs: int = 0
    energy_j: float | None = None  # what the run's GPUs used while training, over all attempts (None: unknown)
    # the current epoch's training losses summed over the steps an earlier attempt made of it (a resume
    # finishes the epoch: its train loss is then the mean over all of the epoch's steps, not n/a)
    carried_loss: float = 0.0
    carried_steps: int = 0


class Trainer:
    def __init__(self, experiment: Experiment, model: nn.Module, placement: Placement, images: np.ndarray,
                 train: Split, task: Task, emit: Emit, steps_per_epoch: int,
                 collectives: Collectives | None = None):
        self.exp = experiment
        self.model = model
        self.net: nn.Module = model  # what forward/backward go through: the DDP wrapper once `wrap` ran
        self.placement = placement
        self.images = images
        self.train = train
        self.emit = emit
        self.collectives = collectives or Collectives(Topology(0, 1, 0), "gloo")
        self.rank, self.world = self.collectives.topology.rank, self.collectives.topology.world
        self.task = task
        self.steps_per_epoch = steps_per_epoch
        self.micro_batch = 1
        self.eval_batch: int | None = None  # None: twice the micro-batch (no gradients or optimizer state)
        self.interrupt: Callable[[], None] = lambda: None  # called between evaluation batches (may raise)
        # A GPU computes while the host reads ahead; on the CPU the reads would compete with the compute
        # for the same cores (measured: +450 us per step on 2 cores), so there each step reads inline.
        self.prefetch = placement.device.type == "cuda"
        self._feed_ring: list[torch.Tensor] = []  # the prefetcher's host buffers, reused across epochs
        self.progress = Progress()
        self._epoch_sum, self._epoch_steps = torch.zeros(()), 0  # this attempt's share of the current epoch
        self.finetune = FinetunePlan(model, experiment.finetune) if experiment.finetune else None
        self._ddp: Callable[[nn.Module], nn.Module] | None = None
        self.generator = torch.Generator().manual_seed(experiment.seed * 1000 + self.rank)
        self.inject = OomInjector.from_environment(self.rank)
        self.optimizer = self._optimizer()
        self._step_in_progress = (0, 0)  # (optimizer step, micro-batch) for the injection seam
        self.optimizer.register_step_pre_hook(lambda *_: self.inject.check("step", *self._step_in_progress))
        self.scheduler = self._scheduler()
        self.scaler = make_scaler(placement)
        if self.prefetch:
            Prefetcher.warm(images, min(self.per_rank_batch, len(train.indices)), pin=True, ring=self._feed_ring)

    def wrap(self, ddp: Callable[[nn.Module], nn.Module]) -> None:
        """Train through DDP from here on (after the probe, which measures the unwrapped model). DDP hooks the
        parameters that train when it wraps, so a finetune wraps again when blocks unfreeze."""
        self._ddp = ddp
        self.net = ddp(self.model)

    def enter_epoch(self, epoch: int) -> None:
        """Make trainable what trains in this epoch (a finetune's phase); says so when it changes."""
        if self.finetune is None:
            return
        phase = self.finetune.phase_of(epoch)
        if not self.finetune.apply(phase):
            return
        if self._ddp is not None:
            self.net = self._ddp(self.model)
        self.emit("trainable", epoch=epoch, **self.finetune.describe(phase))

    def _train_mode(self) -> None:
        self.model.train()
        if self.finetune is not None:
            self.finetune.settle_modes()

    @property
    def ddp_overhead_bytes(self) -> int:
        """DDP's gradient buckets: about one more copy of the trainable parameters."""
        if self.world <= 1:
            return 0
        return sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ setup
    def _optimizer(self) -> torch.optim.Optimizer:
        params = self.finetune.param_groups(self.exp.lr) if self.finetune else self.model.parameters()
        if self.exp.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.exp.lr, momentum=self.exp.momentum,
                                   weight_decay=self.exp.weight_decay, nesterov=True)
        return torch.optim.AdamW(params, lr=self.exp.lr, weight_decay=self.exp.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
        if self.exp.scheduler in WARM_UP:  # both are one cycle: up to the peak, then a cosine down to ~0
            total = max(1, self.exp.epochs * self.steps_per_epoch)
            peaks = [group["lr"] for group in self.optimizer.param_groups]  # a finetune's blocks: their own
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=peaks, total_steps=total,
                                                       pct_start=WARM_UP[self.exp.scheduler], anneal_strategy="cos")
        if self.exp.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode=self.task.scheduler_mode,
                                                              factor=0.5, patience=2)
        return None

    def restore_scheduler(self, state: dict | None) -> None:
        """Load a saved schedule. A cosine (one-cycle) schedule saved for another number of epochs is
        continued at the same step of a schedule for the new total: raising `epochs` before a resume must
        not train the extra epochs at the old schedule's ~0 learning rate, and lowering it ends at the
        schedule's end rather than mid-way at a high rate."""
        if self.scheduler is None or state is None:
            return
        if not isinstance(self.scheduler, torch.optim.lr_scheduler.OneCycleLR):
            self.scheduler.load_state_dict(state)
            return
        total = self.scheduler.total_steps
        kept = {k: v for k, v in state.items() if k not in ("total_steps", "_schedule_phases")}
        kept["last_epoch"] = min(int(state["last_epoch"]), total - 1)
        self.scheduler.load_state_dict({**self.scheduler.state_dict(), **kept})
        with warnings.catch_warnings():  # get_lr() outside step() warns; here it is the point
            warnings.simplefilter("ignore")
            rates = self.scheduler.get_lr()
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"] = rate
        self.scheduler._last_lr = list(rates)  # noqa: SLF001 - what get_last_lr() reports

    @property
    def accumulation(self) -> int:
        return math.ceil(self.per_rank_batch / self.micro_batch)

    @property
    def per_rank_batch(self) -> int:
        return max(1, self.exp.effective_batch // self.world)

    # ------------------------------------------------------------------ one optimizer step
    def _inputs(self, rows: np.ndarray, training: bool, images: torch.Tensor | None = None) -> torch.Tensor:
        """Model input for these cache rows; `images` is their uint8 batch when the prefetcher read it."""
        # uint8 crosses to the device (a quarter of the bytes of float), augmentation runs there
        host = images if images is not None else read_rows(self.images, rows)
        batch = host.to(self.placement.device, non_blocking=True)
        if training and self.exp.augment:
            batch = augment(batch, self.generator)
        x = normalise(batch)
        # the cache's NHWC strides survive elementwise ops: set the memory format either way
        return x.contiguous(memory_format=torch.channels_last if self.placement.channels_last
                            else torch.contiguous_format)

    def _accumulate(self, rows: np.ndarray, labels: np.ndarray, micro: int, step: int,
                    images: torch.Tensor | None = None) -> torch.Tensor:
        """Forward/backward over `rows` in micro-batches of `micro`, gradients summed as one batch.
        Returns the batch's mean loss as a device tensor: no synchronisation here."""
        denominator = self.task.batch_weight(labels)
        loss_sum = torch.zeros((), device=self.placement.device)
        chunks = range(0, len(rows), micro)
        for n, start in enumerate(chunks):
            self.inject.check("forward", step, micro)
            x = self._inputs(rows[start:start + micro], training=True,
                             images=images[start:start + micro] if images is not None else None)
            y = self.task.targets(labels[start:start + micro], self.placement.device)
            last = n == len(chunks) - 1
            sync = contextlib.nullcontext() if last or self.net is self.model else self.net.no_sync()
            with sync:
                with self.placement.autocast():
                    loss = self.task.loss_sum(self.net(x), y)
                if last:
                    self.inject.check("backward", step, micro)
                self.scaler.scale(loss / denominator).backward()
            loss_sum += loss.detach()
        return loss_sum / denominator

    def _clip(self, step: int) -> None:
        if self.exp.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            self.inject.check("clip", step, self.micro_batch)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.exp.grad_clip)

    def optimizer_step(self, rows: np.ndarray, labels: np.ndarray, images: torch.Tensor | None = None) -> torch.Tensor:
        """One optimizer step over this batch. On an OOM spike (in the forward, backward, unscale or clip)
        the same batch is re-split into smaller micro-batches (more accumulation): effective batch, step
        count and data order are unchanged. Returns the mean loss as a device tensor."""
        step = self.progress.step + 1
        while True:
            self.optimizer.zero_grad(set_to_none=True)
            self._step_in_progress = (step, self.micro_batch)
            failure = None
            try:
                loss = self._accumulate(rows, labels, self.micro_batch, step, images)
                self._clip(step)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                if not is_out_of_memory(exc):
                    raise
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            if failure is None:
                break
            self._recover_from_oom(step, failure)
        failure = None
        try:
            self.scaler.step(self.optimizer)
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
            failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if failure is not None:
            self.optimizer.zero_grad(set_to_none=True)
            release_memory(self.placement.device)
            raise RunFailed(f"out of memory inside the optimizer update at step {step} ({failure}); the "
                            f"optimizer's state may be partly updated, so this attempt ends here. Resume continues "
                            f"from the last checkpoint.")
        self.scaler.update()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.OneCycleLR) and \
                self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
            self.scheduler.step()
        self.progress.step = step
        return loss

    def _recover_from_oom(self, step: int, failure: str) -> None:
        """Runs outside the `except` block, whose traceback holds the failed step's tensors."""
        self.optimizer.zero_grad(set_to_none=True)
        # unscale_ may have run: a scaler remembers that until update(), so start from a fresh one
        self.scaler = make_scaler(self.placement, self.scaler.state_dict())
        release_memory(self.placement.device)
        if self.world > 1:
            # DDP's reduction bookkeeping is half done and the other ranks wait in collectives this rank
            # will not join: end the attempt; resume probes the micro-batch again.
            raise RunFailed(f"out of memory at step {step} with micro-batch {self.micro_batch} ({failure}); "
                            f"under DDP this attempt ends here: resume probes the micro-batch again.")
        if self.micro_batch == 1:
            raise RunFailed(f"out of memory at step {step} even with micro-batch 1 ({failure}); use a smaller "
                            f"model or image_size, or free the GPU")
        before = self.micro_batch
        self.micro_batch = max(1, before // 2)
        self.emit("oom", step=step, micro_batch_before=before, micro_batch_after=self.micro_batch,
                  accumulation=self.accumulation)

    # ------------------------------------------------------------------ epochs
    def batches_of_epoch(self, epoch: int) -> list[np.ndarray]:
        """Positions into the train split for each optimizer step of this epoch (this rank's share)."""
        order = epoch_order(self.train.labels, self.exp.sampler, self.exp.seed, epoch)
        size = self.per_rank_batch * self.world
        steps = len(order) // size or 1
        if self.exp.max_steps_per_epoch:
            steps = min(steps, self.exp.max_steps_per_epoch)
        # Within a step the order of the galaxies does not matter (one summed gradient): sorted by their
        # place in the cache, a batch is read front to back in one pass.
        return [self._in_file_order(order[i * size:(i + 1) * size][self.rank::self.world]) for i in range(steps)]

    def _in_file_order(self, positions: np.ndarray) -> np.ndarray:
        return positions[np.argsort(self.train.indices[positions], kind="stable")]

    def train_epoch(self, epoch: int, after_step: Callable[[], bool]) -> tuple[float, bool]:
        """Train from progress.step_in_epoch to the end of the epoch; `after_step` returns True to stop.
        Returns (mean loss, stopped early). Losses add up on the device; the host reads them only when
        it reports (a few times a second), so the GPU's queue never drains for a figure."""
        self.enter_epoch(epoch)
        self._train_mode()
        if self.progress.step_in_epoch == 0:
            self.progress.carried_loss, self.progress.carried_steps = 0.0, 0
        self._epoch_sum, self._epoch_steps = torch.zeros((), device=self.placement.device), 0
        window_sum, window_steps = torch.zeros((), device=self.placement.device), 0
        last_event, window_start, window_samples = 0.0, time.perf_counter(), 0
        batches = self.batches_of_epoch(epoch)
        stopped = False
        first = self.progress.step_in_epoch
        rows = [self.train.indices[p] for p in batches[first:]]
        feeder = (Prefetcher(self.images, rows, pin=self.placement.device.type == "cuda", ring=self._feed_ring)
                  if self.prefetch else Inline(self.images, rows))
        try:
            for i, images in zip(range(first, len(batches)), feeder):
                positions = batches[i]
                loss = self.optimizer_step(self.train.indices[positions], self.train.labels[positions], images)
                self._epoch_sum += loss
                window_sum += loss
                self._epoch_steps, window_steps = self._epoch_steps + 1, window_steps + 1
                self.progress.step_in_epoch = i + 1
                window_samples += len(positions) * self.world
                now = time.perf_counter()
                if now - last_event >= STEP_EVENT_INTERVAL_S or i == len(batches) - 1:
                    rate = window_samples / max(now - window_start, 1e-9)
                    self.emit("step", epoch=epoch, step=self.progress.step,
                              loss=round(float(window_sum) / window_steps, 5), lr=self.optimizer.param_groups[0]["lr"],
                              samples_per_s=round(rate, 1), step_in_epoch=i + 1, steps_per_epoch=len(batches))
                    last_event, window_start, window_samples = now, now, 0
                    window_sum, window_steps = torch.zeros((), device=self.placement.device), 0
                if after_step():
                    stopped = True
                    break
        finally:
            feeder.close()
        total, steps = self.epoch_loss_so_far()
        return (total / steps if steps else float("nan")), stopped

    def epoch_loss_so_far(self) -> tuple[float, int]:
        """The current epoch's summed training loss and its steps, this attempt's and earlier ones' (a
        checkpoint keeps them; reading them waits for the device, so only a checkpoint and the epoch's end do)."""
        mine = float(self._epoch_sum) if self._epoch_steps else 0.0
        return self.progress.carried_loss + mine, self.progress.carried_steps + self._epoch_steps

    @contextmanager
    def reading(self, images: np.ndarray) -> Iterator[None]:
        """Predict from another image array for a while (galaxies outside the run's split)."""
        own, self.images = self.images, images
        try:
            yield
        finally:
            self.images = own

    @torch.no_grad()
    def predict(self, split: Split, tta: bool = False) -> tuple[float, np.ndarray]:
        """Mean loss and the task's predictions (class probabilities) over a split (in its order). The batch
        starts at twice the micro-batch the probe found; an OOM halves it and carries on from the same galaxy.
        `tta`: the predictions are the mean over the 8 flips and quarter turns of each galaxy (galaxies have
        no up); the loss stays the plain view's."""
        self.optimizer.zero_grad(set_to_none=True)  # the last step's gradients are not needed to predict
        self.model.eval()
        batch = self.eval_batch or max(1, 2 * self.micro_batch)
        probabilities: list[np.ndarray] = []
        loss_sum = torch.zeros((), device=self.placement.device)
        start = 0
        while start < len(split.indices):
            self.interrupt()
            rows = split.indices[start:start + batch]
            failure = None
            try:
                self.inject.check("eval", 0, len(rows))
                x = self._inputs(rows, training=False)
                y = self.task.targets(split.labels[start:start + batch], self.placement.device)
                with self.placement.autocast():
                    logits = self.model(x).float()
                    views = [self.task.predictions(self.model(view).float()) for view in dihedral_views(x)[1:]] \
                        if tta else []
                loss_sum += self.task.eval_loss_sum(logits, y)
                plain = self.task.predictions(logits)
                probabilities.append(torch.stack([plain, *views]).mean(0).cpu().numpy() if views else
                                     plain.cpu().numpy())
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                if not is_out_of_memory(exc):
                    raise
                failure = str(exc).splitlines()[0][:200]
            if failure is None:
                start += len(rows)
                continue
            release_memory(self.placement.device)
            if batch == 1:
                raise RunFailed(f"out of memory while evaluating even one galaxy at a time ({failure})")
            batch = max(1, batch // 2)
            self.emit("warning", message=f"evaluation ran out of memory; continuing with batches of {batch}")
        self.eval_batch = batch
        if not probabilities:
            return float("nan"), np.zeros((0, self.task.outputs), dtype=np.float32)
        return float(loss_sum) / len(split.indices), np.concatenate(probabilities)

    # ------------------------------------------------------------------ the probe's trial
    def probe_trial(self, size: int) -> TrialOutcome:
        """Run real optimizer steps at micro-batch `size` (same precision, memory format, optimizer; a finetune's
        widest phase, whose gradients and optimizer state take the most memory), then put back weights, optimizer
        and scaler state, and every random state the trial consumed, so the run's data order and augmentation do
        not depend on the probe. The copies live on the CPU: on the GPU they would inflate the very peak being
        measured."""
        model_state = cpu_copy(self.model.state_dict())
        optim_state = cpu_copy(self.optimizer.state_dict())
        scaler_state = self.scaler.state_dict()
        randomness = rng_states(self.placement.device), self.generator.get_state()
        rng = np.random.default_rng(size)
        rows = self.train.indices[rng.integers(0, len(self.train.indices), size)]
        labels = self.train.labels[rng.integers(0, len(self.train.labels), size)]
        started = time.perf_counter()
        meter = PeakMemory(self.placement)
        fits, peak = True, None
        widest = self.finetune.widest_for_a_while() if self.finetune else contextlib.nullcontext()
        with widest:
            try:
                self._train_mode()
                self._trial_step(rows, labels)  # warm-up: allocates optimizer state, picks kernels
                meter.start()
                for _ in range(2):
                    self._trial_step(rows, labels)
                peak = meter.stop() + self.ddp_overhead_bytes
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are an outcome
                if not is_out_of_memory(exc):
                    raise
                fits = False
        meter.stop()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optim_state)
        self.scaler = make_scaler(self.placement, scaler_state)  # an OOM inside scaler.step skipped update()
        restore_rng_states(randomness[0], self.placement.device)
        self.generator.set_state(randomness[1])
        release_memory(self.placement.device)
        return TrialOutcome(fits, peak, time.perf_counter() - started)

    def _trial_step(self, rows: np.ndarray, labels: np.ndarray) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._step_in_progress = (-1, len(rows))  # the probe's steps are step -1 to the injection seam
        self._accumulate(rows, labels, len(rows), step=-1)
        self.scaler.step(self.optimizer)
        self.scaler.update()
