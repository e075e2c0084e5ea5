"""The training job: resume from the last checkpoint (or start), probe the micro-batch, train epoch by epoch
with validation, best and last checkpoints, early stopping and a stop honoured at the end of a step."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import torch

from galaxy_tui.train.attempt import Attempt, Prepared, StopRequested
from galaxy_tui.train.checkpoint import load_checkpoint, save_checkpoint
from galaxy_tui.train.device import make_scaler, memory_budget, restore_rng_states, rng_states
from galaxy_tui.train.loop import RunFailed, Split, Trainer
from galaxy_tui.train.probe_search import ProbeError, TrialOutcome, search_micro_batch


def train(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> bool:
    """Train to the last epoch. Returns False if stopped (the last checkpoint written)."""
    resumed = attempt.mode == "resume"
    if resumed:
        _restore(attempt, trainer, load_checkpoint(attempt.run_dir / "checkpoints" / "last.pt",
                                                   attempt.frozen.config_hash))
    _announce_finetune(attempt, trainer)
    trainer.enter_epoch(trainer.progress.epoch + 1)
    if not resumed or (attempt.world > 1 and attempt.exp.micro_batch == "auto"):
        # Under DDP an out-of-memory ends the attempt, so a resumed attempt measures again.
        trainer.micro_batch = _choose_micro_batch(attempt, trainer)
    if attempt.world > 1:
        device_ids = [attempt.placement.device.index] if attempt.placement.device.type == "cuda" else None
        trainer.wrap(lambda module: torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids))
    attempt.emit("probe_done", micro_batch=trainer.micro_batch, accumulation=trainer.accumulation,
                 effective_batch=trainer.per_rank_batch * attempt.world)
    return _epochs(attempt, trainer, prepared.splits["val"])


def _announce_finetune(attempt: Attempt, trainer: Trainer) -> None:
    plan = trainer.finetune
    if plan is None or not plan.asked_beyond:
        return
    attempt.emit("warning", message=f"finetune.unfreeze_blocks = {plan.recipe.unfreeze_blocks}, and "
                                    f"{attempt.exp.model} has {plan.total_blocks} blocks: all of them unfreeze")


def _choose_micro_batch(attempt: Attempt, trainer: Trainer) -> int:
    exp, collectives = attempt.exp, attempt.collectives
    if exp.micro_batch != "auto":
        return min(int(exp.micro_batch), trainer.per_rank_batch)
    attempt.state("probing")

    def read_budget() -> int:
        # Read after the first trial (kernels ran, library handles exist); every rank searches
        # with the smallest budget, so the ranks take the same branches.
        return collectives.min_int(memory_budget(attempt.placement, exp.vram_margin))

    def trial(size: int) -> TrialOutcome:
        outcome = trainer.probe_trial(size)
        # every rank must see the same outcome so the search agrees
        peak, failed = collectives.max_ints([outcome.peak_bytes or 0, 0 if outcome.fits else 1])
        return TrialOutcome(not failed, None if failed else peak, outcome.seconds)

    def on_trial(t: Any) -> None:
        if attempt.stop_agreed():  # every rank reaches each trial, so they stop together
            raise StopRequested
        attempt.emit("probe_trial", trial=t.index, phase=t.phase, micro_batch=t.micro_batch,
                     peak_bytes=t.peak_bytes, budget_bytes=t.budget_bytes, fits=t.fits,
                     seconds=round(t.seconds, 3), fitted=t.fitted, predicted=t.predicted)

    try:
        result = search_micro_batch(trial, read_budget, trainer.per_rank_batch, on_trial)
    except ProbeError as exc:
        budget = memory_budget(attempt.placement, exp.vram_margin)
        raise RunFailed(f"{exc}: budget {budget / 2**30:.2f} GiB; use a smaller model or image_size") from None
    return result.micro_batch


def _checkpoint_state(attempt: Attempt, trainer: Trainer) -> dict[str, Any]:
    p = trainer.progress
    return {
        "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
        "scaler": trainer.scaler.state_dict(), **rng_states(attempt.placement.device),
        "generator": trainer.generator.get_state(),
        "epoch": p.epoch, "step": p.step, "step_in_epoch": p.step_in_epoch, "best_metric": p.best_metric,
        "best_epoch": p.best_epoch, "stale_epochs": p.stale_epochs, "micro_batch": trainer.micro_batch,
        "energy_j": p.energy_j,
        "epoch_loss": trainer.epoch_loss_so_far() if p.step_in_epoch else (0.0, 0),
        "config_hash": attempt.frozen.config_hash,
    }


def _save(attempt: Attempt, trainer: Trainer, kind: str) -> None:
    if attempt.rank != 0:
        return
    path = attempt.run_dir / "checkpoints" / f"{kind}.pt"
    save_checkpoint(path, _checkpoint_state(attempt, trainer))
    attempt.emit("checkpoint", kind=kind, path=str(path.relative_to(attempt.run_dir)), epoch=trainer.progress.epoch,
                 step=trainer.progress.step)


def _restore(attempt: Attempt, trainer: Trainer, state: dict[str, Any]) -> None:
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.restore_scheduler(state["scheduler"])
    trainer.scaler = make_scaler(attempt.placement, state["scaler"])
    p, seed, rank = trainer.progress, attempt.exp.seed, attempt.rank
    if rank == 0:
        restore_rng_states(state, attempt.placement.device)
        trainer.generator.set_state(state["generator"])
    else:  # the checkpoint holds rank 0's random states; the other ranks draw their own streams
        torch.manual_seed(seed + rank + 7919 * int(state["step"]))
        trainer.generator.manual_seed(seed * 1000 + rank + 7919 * int(state["step"]))
    p.epoch, p.step, p.step_in_epoch = int(state["epoch"]), int(state["step"]), int(state["step_in_epoch"])
    # a checkpoint from before tasks said "no best yet" with -1.0
    best = state["best_metric"]
    p.best_metric = None if best is None or best == -1.0 else float(best)
    p.best_epoch = int(state["best_epoch"])
    p.stale_epochs = int(state["stale_epochs"])
    p.energy_j = state.get("energy_j")
    carried_loss, carried_steps = state.get("epoch_loss") or (0.0, 0)  # older checkpoints: none
    p.carried_loss, p.carried_steps = float(carried_loss), int(carried_steps)
    trainer.micro_batch = int(state["micro_batch"])
    attempt.emit("resumed", epoch=p.epoch, step=p.step, step_in_epoch=p.step_in_epoch,
                 micro_batch=trainer.micro_batch)


def _epochs(attempt: Attempt, trainer: Trainer, val: Split) -> bool:
    p, exp = trainer.progress, attempt.exp
    attempt.state("training", epoch=p.epoch, step=p.step, micro_batch=trainer.micro_batch,
                  accumulation=trainer.accumulation)
    last_save = time.monotonic()

    def after_step() -> bool:
        """Every few minutes a mid-epoch last.pt; then whether to stop."""
        nonlocal last_save
        if time.monotonic() - last_save > exp.checkpoint_minutes * 60:
            _save(attempt, trainer, "last")
            last_save = time.monotonic()
        return attempt.stop_agreed()

    for epoch in range(p.epoch + 1, exp.epochs + 1):
        started = time.perf_counter()
        energy_before, step_before = attempt.energy()[0], p.step
        train_loss, stopped = trainer.train_epoch(epoch, after_step)
        energy_after, attempt.energy_source = attempt.energy()
        epoch_energy = energy_after - energy_before if energy_after is not None and energy_before is not None \
            else None
        if epoch_energy is not None:
            p.energy_j = (p.energy_j or 0.0) + epoch_energy
        images = (p.step - step_before) * trainer.per_rank_batch * attempt.world
        if stopped:
            _save(attempt, trainer, "last")
            attempt.emit("stopped", epoch=p.epoch, step=p.step)
            attempt.state("stopped", step=p.step, message="stopped on request; resume continues from here")
            return False
        train_loss, val_loss, score = _validate(attempt, trainer, val, train_loss)
        p.epoch, p.step_in_epoch = epoch, 0
        improved = trainer.task.improved(score, p.best_metric)
        if improved:
            p.best_metric, p.best_epoch, p.stale_epochs = score, epoch, 0
        else:
            p.stale_epochs += 1
        if trainer.scheduler is not None and not isinstance(trainer.scheduler, torch.optim.lr_scheduler.OneCycleLR):
            trainer.scheduler.step(score)
        lr = trainer.optimizer.param_groups[0]["lr"]
        metric = trainer.task.metric
        attempt.log_rank(f"epoch {epoch} val_loss={val_loss!r} {metric}={score!r} improved={improved} lr={lr!r}")
        if attempt.world > 1:  # ranks that drifted apart (a gradient not all-reduced) show here
            attempt.log_rank(f"weights after epoch {epoch}: sum {_weights_sum(trainer.model)!r}")
        attempt.emit("epoch", epoch=epoch, train_loss=round(train_loss, 5), val_loss=round(val_loss, 5),
                     **{metric: round(score, 5)}, seconds=round(time.perf_counter() - started, 2), lr=lr, step=p.step,
                     energy_j=None if epoch_energy is None else round(epoch_energy, 1),
                     images_per_j=None if not epoch_energy else round(images / epoch_energy, 3),
                     energy_note=attempt.energy_source)
        if improved:  # best first: a kill between the two writes never leaves a last.pt newer than best.pt
            _save(attempt, trainer, "best")
            if os.environ.get("GALAXY_TUI_KILL_BETWEEN_CHECKPOINTS") == str(epoch):  # test seam
                os.kill(os.getpid(), signal.SIGKILL)
        _save(attempt, trainer, "last")
        last_save = time.monotonic()
        attempt.state("training", epoch=epoch, step=p.step, best_metric=p.best_metric,
                      micro_batch=trainer.micro_batch, accumulation=trainer.accumulation)
        if exp.early_stopping and p.stale_epochs >= exp.early_stopping:
            attempt.emit("early_stop", epoch=epoch, best_epoch=p.best_epoch)
            break
    return True


def _validate(attempt: Attempt, trainer: Trainer, val: Split, train_loss: float) -> tuple[float, float, float]:
    """(train loss, val loss, the task's val score), measured once, on rank 0, and given to every rank:
    each rank's BatchNorm statistics differ after a step, and ranks deciding apart (best, early stop,
    LR) would part ways."""
    if attempt.rank == 0:
        val_loss, predictions = trainer.predict(val)
        score = trainer.task.score(predictions, val.labels)
    else:
        val_loss = score = 0.0
    (train_loss,) = attempt.collectives.mean([train_loss])
    val_loss, score = attempt.collectives.from_rank0([val_loss, score])
    return train_loss, val_loss, score


def _weights_sum(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters()))
