"""The worker process: `python -m galaxy_tui.train.worker RUN_DIR --mode train|resume|evaluate|boost`.

Reads the run's frozen config, prepares the images, probes the micro-batch, trains with checkpoints,
evaluates the best checkpoint, and tells the world through events.jsonl and status.json. On SIGTERM
it finishes the step, writes the last checkpoint and exits 0 as `stopped`. Under torchrun, rank 0
alone writes events, status and checkpoints.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from galaxy_tui.analysis.boosting import as_fractions, boost_classifier, boost_regressors
from galaxy_tui.analysis.calibration import mean_log_loss
from galaxy_tui.analysis.classification_results import volunteer_table, write_results
from galaxy_tui.analysis.derived_results import derived_folder, finish_derived, trees_text
from galaxy_tui.analysis.fraction_results import (
    derived_classification,
    errors,
    mean_squared_error,
    write_fraction_results,
)
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.atomic import read_json
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.labels import UNLABELLED
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.data.splits import labelled_split, write_split
from galaxy_tui.errors import GalaxyError, storage_problem
from galaxy_tui.events import AGAIN_MODES
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.train.checkpoint import load_checkpoint, save_checkpoint
from galaxy_tui.train.device import (
    choose_placement,
    make_scaler,
    memory_budget,
    restore_rng_states,
    rng_states,
    run_gpu_uuids,
)
from galaxy_tui.train.distributed import Collectives, PeerFailures, Topology, backend_for
from galaxy_tui.train.loop import RunFailed, Split, Trainer
from galaxy_tui.train.manifest import build_manifest, write_manifest
from galaxy_tui.train.models import build_model, head_layer
from galaxy_tui.train.probe_search import ProbeError, TrialOutcome, search_micro_batch
from galaxy_tui.train.reporting import GpuLogger, HostLogger, Reporter
from galaxy_tui.train.tasks import ClassificationTask, Task, VoteFractionTask

_LOGGED = frozenset({"started", "data", "probe_trial", "probe_done", "resumed", "epoch", "oom", "checkpoint",
                     "warning", "trainable", "stopped", "eval", "finished", "early_stop", "telemetry"})


class StopRequested(Exception):
    """A stop arrived in a phase with no step to finish (preparing, probing, evaluating)."""


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_: Any) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise StopRequested


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tta_figures(task: Task, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float | None]:
    """The headline figure of predictions averaged over the 8 views, beside the plain one in metrics.json."""
    if isinstance(task, VoteFractionTask):
        return {"views": 8, "rmse": errors(predictions, labels[:, :task.outputs])[0]}
    return {"views": 8, "accuracy": round(float((predictions.argmax(1) == labels).mean()), 5)}


def _measured_part(splits: dict[str, Split]) -> tuple[str, Split]:
    """The galaxies results are measured on: the test part, or the validation part (and saying so) when the
    dataset has no test part — never validation called "test"."""
    return ("test", splits["test"]) if len(splits["test"].indices) else ("validation", splits["val"])


def _weights_sum(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters()))


THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.5 ... 0.95


class Worker:
    def __init__(self, run_dir: Path, mode: str):
        self.run_dir = run_dir
        self.mode = mode
        self.frozen = read_frozen(run_dir)
        self.config = self.frozen.config
        self.workspace = self.frozen.workspace
        self.exp, self.spec = self.frozen.experiment, self.frozen.dataset
        self.topology = Topology.from_environment()
        self.rank, self.world = self.topology.rank, self.topology.world
        self.reporter = Reporter(run_dir, writes=self.rank == 0)
        self.stop = _StopFlag()
        self.placement = choose_placement(self.exp.precision, self.exp.channels_last, self.exp.tf32,
                                          self.topology.local_rank)
        self.collectives = Collectives(self.topology, backend_for(self.placement.device.type == "cuda"))
        self.peers = PeerFailures(run_dir, self.topology)
        self.started = time.time()
        self.energy_source = ""
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        self.gpu_uuids = run_gpu_uuids(self.placement, local_world)
        self.gpu_logger = GpuLogger(self.reporter, self.gpu_uuids).start() if self.rank == 0 else None
        self.host_logger = HostLogger(self.reporter).start() if self.rank == 0 else None

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.reporter.emit(kind, **fields)
        if kind in _LOGGED and self.rank == 0:
            details = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("per_class", "traceback", "fitted"))
            print(f"{time.strftime('%H:%M:%S')} {kind} {details}", flush=True)

    def state(self, state: str, **fields: Any) -> None:
        self.reporter.update(state=state, **fields)

    # ------------------------------------------------------------------ data
    def _data(self) -> tuple[np.ndarray, tuple[str, ...], dict[str, Split], Task]:
        self.state("preparing")
        dataset = load_dataset(self.spec, Path(self.config["run"]["cache_dir"]))
        for problem in dataset.problems:
            self.emit("warning", message=problem)
        split_file = self.run_dir / "split.csv"
        chosen = labelled_split(dataset, self.exp, split_file)
        frame, labels, assignment, counts = chosen.frame, chosen.labels, chosen.assignment, chosen.counts
        if self.rank == 0 and not split_file.exists():
            write_split(split_file, frame["id"], assignment)

        def progress(done: int, total: int) -> None:
            self.emit("prepare", done=done, total=total)
            self.stop.check()  # every few hundred images: a stop while preparing is honoured at once

        cache_root = Path(self.config["run"]["cache_dir"])
        crop = float(self.spec.options.get("crop", 1.0))
        # Before the process group exists, so a long first build meets no collective timeout: rank 0
        # builds (and shows progress); the others wait for its word on disk, then open the same cache.
        if self.rank != 0:
            self.peers.wait_for_images(self.stop.check)
        prepared = prepare_images(dataset, list(frame["ref"]), self.exp.image_size, cache_root, crop,
                                  progress if self.rank == 0 else None)
        if self.rank == 0 and self.world > 1:
            self.peers.images_ready()
        if prepared.unreadable:
            self.emit("warning", message=f"{prepared.unreadable} image(s) could not be read and were skipped")
        self.ids = frame["id"].to_numpy()
        self.rule_labels = labels
        rows = {name: np.flatnonzero((assignment == name) & prepared.valid) for name in ("train", "val", "test")}
        task: Task
        if chosen.tree is not None:  # vote fractions
            task = VoteFractionTask(chosen.tree, self.exp.loss)
            targets = task.target_table(*dataset.answers(frame, task.tree))
            self.volunteers = None
        else:
            task = ClassificationTask(len(dataset.classes), self.exp, labels[rows["train"]])
            targets = labels
            self.volunteers = volunteer_table(frame, labels) if dataset.has_votes else None
        splits = {name: Split(indices, targets[indices]) for name, indices in rows.items()}
        self.reporter.update(metric=task.metric)  # what the runs list's "best" measures
        if self.rank == 0:
            record, diff = build_manifest(int(self.reporter.get("attempt", 1)), self.exp.seed, self.placement.device,
                                          {"name": dataset.name, "kind": dataset.kind, "location": dataset.location,
                                           "fingerprint": dataset.fingerprint}, frame)
            write_manifest(self.run_dir, record, diff)
        self.classes = dataset.classes
        self.dataset = dataset
        self.emit("data", classes=list(dataset.classes), counts=counts,
                  split={k: int(len(v.indices)) for k, v in splits.items()})
        return prepared.images, dataset.classes, splits, task

    # ------------------------------------------------------------------ the run
    def run(self) -> int:
        _seed_everything(self.exp.seed)
        attempt = int(self.reporter.get("attempt", 1))
        self.peers.watch(self._peer_failed)
        self.state("preparing", pid=os.getpid(), epochs=self.exp.epochs, attempt=attempt, mode=self.mode)
        self.emit("started", run=self.run_dir.name, experiment=self.config["run"]["experiment"], attempt=attempt,
                  mode=self.mode, device=str(self.placement.device), precision=self.placement.precision,
                  torch=torch.__version__, host=socket.gethostname(), world=self.world, gpus=self.gpu_uuids)
        images, classes, splits, task = self._data()
        if self.collectives.distributed:
            self.collectives.start()
            self.emit("distributed", backend=self.collectives.backend, world=self.world)
        checkpoints = self.run_dir / "checkpoints"
        if self.mode == "resume" and not (checkpoints / "last.pt").exists():
            raise GalaxyError(f"{checkpoints / 'last.pt'} is missing: there is nothing to resume from, and training "
                              f"again from epoch 1 would overwrite best.pt; --skip evaluates best.pt, --restart "
                              f"starts a new run")
        resumed = self.mode == "resume"
        # Pretrained weights only for a fresh start: a checkpoint holds every weight (and needs no cache).
        fresh = self.mode == "train"
        weights = Path(self.config["run"]["workspace"]) / Path(self.exp.weights).expanduser() \
            if self.exp.weights and fresh else None
        model = build_model(self.exp.model, task.outputs, self.exp.pretrained and fresh, weights)
        pretrained_size = getattr(model, "pretrained_size", None)
        if pretrained_size and pretrained_size != self.exp.image_size:
            self.emit("warning", message=f"{self.exp.model} was pretrained on {pretrained_size} px images; this "
                                      f"experiment feeds it {self.exp.image_size} px (image_size)")
        model = model.to(self.placement.device)
        if self.placement.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # Same initial weights everywhere (seeded above), then a stream of random numbers per rank, so
        # the ranks' dropout masks and augmentations differ.
        seed = self.exp.seed + self.rank
        torch.manual_seed(seed)
        self._log_rank(f"seed {seed}")
        steps = max(1, len(splits["train"].indices) // self.exp.effective_batch)
        if self.exp.max_steps_per_epoch:
            steps = min(steps, self.exp.max_steps_per_epoch)
        trainer = Trainer(self.exp, model, self.placement, images, splits["train"], task, self.emit,
                          steps, self.collectives)
        config_hash = self.config["run"]["config_hash"]
        if self.mode == "evaluate":
            return self._evaluate(trainer, classes, splits, images, config_hash)
        if self.mode == "boost":
            return self._boost(trainer, classes, splits, images, config_hash)
        if resumed:
            self._restore(trainer, load_checkpoint(checkpoints / "last.pt", config_hash))
        self._announce_finetune(trainer)
        trainer.enter_epoch(trainer.progress.epoch + 1)
        if not resumed or (self.world > 1 and self.exp.micro_batch == "auto"):
            # Under DDP an out-of-memory ends the attempt, so a resumed attempt measures again.
            trainer.micro_batch = self._choose_micro_batch(trainer)
        if self.world > 1:
            device_ids = [self.placement.device.index] if self.placement.device.type == "cuda" else None
            trainer.wrap(lambda module: torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids))
        self.emit("probe_done", micro_batch=trainer.micro_batch, accumulation=trainer.accumulation,
                  effective_batch=trainer.per_rank_batch * self.world)
        if not self._train(trainer, splits, config_hash):
            return 0
        return self._evaluate(trainer, classes, splits, images, config_hash)

    def _announce_finetune(self, trainer: Trainer) -> None:
        plan = trainer.finetune
        if plan is None or not plan.asked_beyond:
            return
        self.emit("warning", message=f"finetune.unfreeze_blocks = {plan.recipe.unfreeze_blocks}, and {self.exp.model} "
                                     f"has {plan.total_blocks} blocks: all of them unfreeze")

    def _log_rank(self, line: str) -> None:
        """Every rank's own log (ranks/<N>/stdout.log under torchrun): what this rank decided."""
        if self.world > 1:
            print(f"rank {self.rank}: {line}", flush=True)

    def _peer_failed(self, message: str) -> None:
        """Another rank failed; this one may be stuck in a collective that will never complete."""
        if self.rank == 0:
            self.fail(message)
        self.close(destroy_group=False)
        os._exit(1)

    def _choose_micro_batch(self, trainer: Trainer) -> int:
        if self.exp.micro_batch != "auto":
            return min(int(self.exp.micro_batch), trainer.per_rank_batch)
        self.state("probing")

        def read_budget() -> int:
            # Read after the first trial (kernels ran, library handles exist); every rank searches
            # with the smallest budget, so the ranks take the same branches.
            return self.collectives.min_int(memory_budget(self.placement, self.exp.vram_margin))

        def trial(size: int) -> TrialOutcome:
            outcome = trainer.probe_trial(size)
            # every rank must see the same outcome so the search agrees
            peak, failed = self.collectives.max_ints([outcome.peak_bytes or 0, 0 if outcome.fits else 1])
            return TrialOutcome(not failed, None if failed else peak, outcome.seconds)

        def on_trial(t: Any) -> None:
            if self._stop_agreed():  # every rank reaches each trial, so they stop together
                raise StopRequested
            self.emit("probe_trial", trial=t.index, phase=t.phase, micro_batch=t.micro_batch,
                      peak_bytes=t.peak_bytes, budget_bytes=t.budget_bytes, fits=t.fits,
                      seconds=round(t.seconds, 3), fitted=t.fitted, predicted=t.predicted)

        try:
            result = search_micro_batch(trial, read_budget, trainer.per_rank_batch, on_trial)
        except ProbeError as exc:
            budget = memory_budget(self.placement, self.exp.vram_margin)
            raise RunFailed(f"{exc}: budget {budget / 2**30:.2f} GiB; use a smaller model or image_size") from None
        return result.micro_batch

    def _checkpoint_state(self, trainer: Trainer, config_hash: str) -> dict[str, Any]:
        p = trainer.progress
        return {
            "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
            "scaler": trainer.scaler.state_dict(), **rng_states(self.placement.device),
            "generator": trainer.generator.get_state(),
            "epoch": p.epoch, "step": p.step, "step_in_epoch": p.step_in_epoch, "best_metric": p.best_metric,
            "best_epoch": p.best_epoch, "stale_epochs": p.stale_epochs, "micro_batch": trainer.micro_batch,
            "energy_j": p.energy_j,
            "config_hash": config_hash,
        }

    def _save(self, trainer: Trainer, kind: str, config_hash: str) -> None:
        if self.rank != 0:
            return
        path = self.run_dir / "checkpoints" / f"{kind}.pt"
        save_checkpoint(path, self._checkpoint_state(trainer, config_hash))
        self.emit("checkpoint", kind=kind, path=str(path.relative_to(self.run_dir)), epoch=trainer.progress.epoch,
                  step=trainer.progress.step)

    def _restore(self, trainer: Trainer, state: dict[str, Any]) -> None:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.restore_scheduler(state["scheduler"])
        trainer.scaler = make_scaler(self.placement, state["scaler"])
        p = trainer.progress
        if self.rank == 0:
            restore_rng_states(state, self.placement.device)
            trainer.generator.set_state(state["generator"])
        else:  # the checkpoint holds rank 0's random states; the other ranks draw their own streams
            torch.manual_seed(self.exp.seed + self.rank + 7919 * int(state["step"]))
            trainer.generator.manual_seed(self.exp.seed * 1000 + self.rank + 7919 * int(state["step"]))
        p.epoch, p.step, p.step_in_epoch = int(state["epoch"]), int(state["step"]), int(state["step_in_epoch"])
        # a checkpoint from before tasks said "no best yet" with -1.0
        best = state["best_metric"]
        p.best_metric = None if best is None or best == -1.0 else float(best)
        p.best_epoch = int(state["best_epoch"])
        p.stale_epochs = int(state["stale_epochs"])
        p.energy_j = state.get("energy_j")
        trainer.micro_batch = int(state["micro_batch"])
        self.emit("resumed", epoch=p.epoch, step=p.step, step_in_epoch=p.step_in_epoch, micro_batch=trainer.micro_batch)

    def _train(self, trainer: Trainer, splits: dict[str, Split], config_hash: str) -> bool:
        """Train to the last epoch. Returns False if stopped (checkpoint written)."""
        p = trainer.progress
        self.state("training", epoch=p.epoch, step=p.step, micro_batch=trainer.micro_batch,
                   accumulation=trainer.accumulation)
        last_save = time.monotonic()

        def after_step() -> bool:
            """Every few minutes a mid-epoch last.pt; then whether to stop."""
            nonlocal last_save
            if time.monotonic() - last_save > self.exp.checkpoint_minutes * 60:
                self._save(trainer, "last", config_hash)
                last_save = time.monotonic()
            return self._stop_agreed()

        for epoch in range(p.epoch + 1, self.exp.epochs + 1):
            started = time.perf_counter()
            energy_before, step_before = self._energy()[0], p.step
            train_loss, stopped = trainer.train_epoch(epoch, after_step)
            energy_after, self.energy_source = self._energy()
            epoch_energy = energy_after - energy_before if energy_after is not None and energy_before is not None \
                else None
            if epoch_energy is not None:
                p.energy_j = (p.energy_j or 0.0) + epoch_energy
            images = (p.step - step_before) * trainer.per_rank_batch * self.world
            if stopped:
                self._save(trainer, "last", config_hash)
                self.emit("stopped", epoch=p.epoch, step=p.step)
                self.state("stopped", step=p.step, message="stopped on request; resume continues from here")
                return False
            train_loss, val_loss, score = self._validate(trainer, splits["val"], train_loss)
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
            self._log_rank(f"epoch {epoch} val_loss={val_loss!r} {metric}={score!r} improved={improved} lr={lr!r}")
            if self.world > 1:  # ranks that drifted apart (a gradient not all-reduced) show here
                self._log_rank(f"weights after epoch {epoch}: sum {_weights_sum(trainer.model)!r}")
            self.emit("epoch", epoch=epoch, train_loss=round(train_loss, 5), val_loss=round(val_loss, 5),
                      **{metric: round(score, 5)}, seconds=round(time.perf_counter() - started, 2), lr=lr, step=p.step,
                      energy_j=None if epoch_energy is None else round(epoch_energy, 1),
                      images_per_j=None if not epoch_energy else round(images / epoch_energy, 3),
                      energy_note=self.energy_source)
            if improved:  # best first: a kill between the two writes never leaves a last.pt newer than best.pt
                self._save(trainer, "best", config_hash)
                if os.environ.get("GALAXY_TUI_KILL_BETWEEN_CHECKPOINTS") == str(epoch):  # test seam
                    os.kill(os.getpid(), signal.SIGKILL)
            self._save(trainer, "last", config_hash)
            last_save = time.monotonic()
            self.state("training", epoch=epoch, step=p.step, best_metric=p.best_metric,
                       micro_batch=trainer.micro_batch, accumulation=trainer.accumulation)
            if self.exp.early_stopping and p.stale_epochs >= self.exp.early_stopping:
                self.emit("early_stop", epoch=epoch, best_epoch=p.best_epoch)
                break
        return True

    def _run_energy(self, trainer: Trainer, config_hash: str) -> dict[str, Any]:
        """Energy of the whole training (all attempts) and images per joule, for metrics.json."""
        energy, steps = trainer.progress.energy_j, trainer.progress.step
        last = self.run_dir / "checkpoints" / "last.pt"
        if self.mode == "evaluate" and last.exists():  # --skip: the figures are in the last checkpoint
            state = load_checkpoint(last, config_hash)
            energy, steps = state.get("energy_j"), int(state["step"])
        images = steps * trainer.per_rank_batch * self.world
        return {"energy_j": None if energy is None else round(energy, 1),
                "images_per_j": round(images / energy, 3) if energy else None,
                "energy_note": self.energy_source or self._energy()[1]}

    def _energy(self) -> tuple[float | None, str]:
        """The run's GPUs' energy so far and how it is known (rank 0 measures every GPU of the node)."""
        if self.gpu_logger is None:
            return None, "measured by rank 0"
        return self.gpu_logger.energy()

    def _validate(self, trainer: Trainer, val: Split, train_loss: float) -> tuple[float, float, float]:
        """(train loss, val loss, the task's val score), measured once, on rank 0, and given to every rank:
        each rank's BatchNorm statistics differ after a step, and ranks deciding apart (best, early stop,
        LR) would part ways."""
        if self.rank == 0:
            val_loss, predictions = trainer.predict(val)
            score = trainer.task.score(predictions, val.labels)
        else:
            val_loss = score = 0.0
        (train_loss,) = self.collectives.mean([train_loss])
        val_loss, score = self.collectives.from_rank0([val_loss, score])
        return train_loss, val_loss, score

    def _stop_agreed(self) -> bool:
        return self.collectives.any(self.stop.requested)

    def _evaluate(self, trainer: Trainer, classes: tuple[str, ...], splits: dict[str, Split],
                  images: np.ndarray, config_hash: str) -> int:
        self.collectives.barrier()  # every rank is past training, and rank 0 has written best.pt
        if self.rank != 0:
            return 0  # rank 0 evaluates alone: no collective is left, and it alone writes results
        self.state("evaluating")
        trainer.interrupt = self.stop.check  # the model is trained: a stop here ends the evaluation at once
        best = load_checkpoint(self.run_dir / "checkpoints" / "best.pt", config_hash)
        trainer.model.load_state_dict(best["model"])
        measured, test = _measured_part(splits)
        loss, predictions = trainer.predict(test)
        tta = trainer.predict(test, tta=True)[1] if self.exp.tta else None
        best_metric = float(best["best_metric"])
        extra = {"best_epoch": int(best["best_epoch"]), f"best_{trainer.task.metric}": round(best_metric, 5),
                 "epochs_trained": int(best["epoch"]), "micro_batch": trainer.micro_batch, "model": self.exp.model,
                 "parameters": sum(p.numel() for p in trainer.model.parameters()),
                 "threshold": self.exp.labels.threshold, **self._run_energy(trainer, config_hash),
                 "seconds": self._training_seconds()}
        if measured == "validation":
            self.emit("warning", message="this dataset has no test part: the results are measured on the validation "
                                         "galaxies (which chose the best checkpoint), so they are optimistic")
        if tta is not None:
            extra["tta"] = _tta_figures(trainer.task, test.labels, tta)
        if isinstance(trainer.task, ClassificationTask) and self.dataset.has_votes:
            extra["thresholds"] = self._threshold_curve(trainer, splits["train"])
        val = splits["val"]
        val_predictions = predictions if measured == "validation" else trainer.predict(val)[1]
        if isinstance(trainer.task, VoteFractionTask):
            metrics = self._fraction_results(trainer.task, splits, test, predictions, loss, images, measured,
                                             {**extra, "loss_function": self.exp.loss}, self.run_dir, val_predictions)
            self.emit("eval", split=measured, loss=metrics["loss"], rmse=metrics["rmse"], mae=metrics["mae"],
                      baseline_rmse=metrics["baseline"]["rmse"])
            headline = {"rmse": metrics["rmse"], "loss": metrics["loss"]}
        else:
            metrics = write_results(
                self.run_dir / "results", classes, Measured(self.ids[test.indices], test.labels, predictions), loss,
                images, test.indices, self.exp.mistakes, extra, measured,
                self.volunteers.iloc[test.indices] if self.volunteers is not None else None,
                Measured(self.ids[val.indices], val.labels, val_predictions))
            self.emit("eval", split=measured, loss=metrics["loss"], accuracy=metrics["accuracy"],
                      per_class=metrics["per_class"])
            headline = {"accuracy": metrics["accuracy"], "loss": metrics["loss"]}
        self.emit("finished", **headline, **{f"best_{trainer.task.metric}": best_metric})
        test_figure = {f"test_{k}": v for k, v in headline.items() if k != "loss"}
        self.state("finished", best_metric=best_metric, **test_figure, message="")
        return 0

    def _features(self, trainer: Trainer, splits: dict[str, Split]) -> dict[str, np.ndarray]:
        """The penultimate layer's output (the head's input) for every galaxy of each part, saved in features/
        as <part>.npy beside <part>_ids.csv."""
        captured: list[torch.Tensor] = []
        hook = head_layer(trainer.model).register_forward_hook(
            lambda _module, inputs, _output: captured.append(inputs[0].detach().float().cpu()))
        folder = self.run_dir / "features"
        folder.mkdir(exist_ok=True)
        features = {}
        try:
            for part, split in splits.items():
                captured.clear()
                trainer.predict(split)
                values = torch.cat(captured).numpy() if captured else np.zeros((0, 0), np.float32)
                if len(values) != len(split.indices):  # an out-of-memory retry ran a batch twice
                    raise RunFailed(f"feature extraction of the {part} galaxies was interrupted by an out-of-memory "
                                    f"retry; run it again")
                np.save(folder / f"{part}.npy", values)
                pd.DataFrame({"id": self.ids[split.indices]}).to_csv(folder / f"{part}_ids.csv", index=False)
                features[part] = values
                self.emit("features", part=part, galaxies=int(len(values)), dimensions=int(values.shape[1]))
        finally:
            hook.remove()
        return features

    def _boost(self, trainer: Trainer, classes: tuple[str, ...], splits: dict[str, Split], images: np.ndarray,
               config_hash: str) -> int:
        """Gradient boosting on the best model's features, saved as its own result folder beside the run."""
        started = time.time()
        self.state("evaluating", message="extracting features for gradient boosting")
        trainer.interrupt = self.stop.check
        best = load_checkpoint(self.run_dir / "checkpoints" / "best.pt", config_hash)
        trainer.model.load_state_dict(best["model"])
        features = self._features(trainer, splits)
        booster = str(self.config.get("boost", {}).get("booster", "histgb"))
        self.state("evaluating", message=f"fitting {booster} on {features['train'].shape[1]} features")
        measured, test = _measured_part(splits)
        task, train, val = trainer.task, splits["train"], splits["val"]
        test_features = features["test" if measured == "test" else "val"]
        if isinstance(task, VoteFractionTask):
            answers = slice(0, task.outputs)
            raw = boost_regressors((features["train"], train.labels[:, answers]),
                                   (features["val"], val.labels[:, answers]), test_features, booster, self.exp.seed)
            boosted = replace(raw, val=as_fractions(raw.val, task.slices, task.tree.cumulative),
                              test=as_fractions(raw.test, task.slices, task.tree.cumulative))
        else:
            boosted = boost_classifier((features["train"], train.labels), (features["val"], val.labels),
                                       test_features, len(classes), booster, self.exp.seed)
        what = {"run": self.run_dir.name, "booster": booster, "trees": list(boosted.trees),
                "features": int(features["train"].shape[1])}
        extra = {"kind": "boosted", "boosted": what, "threshold": self.exp.labels.threshold,
                 "model": f"{booster} on {self.exp.model}"}
        with derived_folder(self.run_dir.parent, "boosted", self.run_dir, "boosted", what) as folder:
            extra["seconds"] = round(time.time() - started, 1)
            if isinstance(task, VoteFractionTask):
                extra["best_val_rmse"] = errors(boosted.val, val.labels[:, :task.outputs])[0]
                metrics = self._fraction_results(task, splits, test, boosted.test, None, images, measured,
                                                 {**extra, "loss_function": "mse"}, folder, boosted.val)
            else:
                extra["best_val_acc"] = round(float((boosted.val.argmax(1) == val.labels).mean()), 5)
                metrics = write_results(
                    folder / "results", classes, Measured(self.ids[test.indices], test.labels, boosted.test),
                    mean_log_loss(boosted.test, test.labels), images, test.indices, self.exp.mistakes, extra,
                    measured, None, Measured(self.ids[val.indices], val.labels, boosted.val))
            built = finish_derived(folder, "boosted", metrics, started,
                                   f"{booster} ({trees_text(boosted.trees)}) on the features of {self.run_dir.name}")
        name = "rmse" if isinstance(task, VoteFractionTask) else "accuracy"
        self.emit("boosted", folder=built.id, trees=list(boosted.trees), **{name: metrics[name]})
        self.state("finished", message=f"boosted: {built.id} ({measured} {name} {metrics[name]:.4f})")
        return 0

    def _threshold_curve(self, trainer: Trainer, train: Split) -> list[dict[str, float | int | None]]:
        """Accuracy on the galaxies never trained on that the labelling rule labels at thresholds 0.5 to 0.95:
        how the model does on galaxies less certain than those it learnt from (and on surer ones)."""
        self.state("evaluating", message="accuracy against the vote threshold")
        frame = self.dataset.frame
        trained = frame["id"].isin(set(self.ids[train.indices])).to_numpy()
        labels = {t: self.dataset.labels(replace(self.exp.labels, threshold=t)) for t in THRESHOLDS}
        rows = np.flatnonzero(~trained & np.any([lab != UNLABELLED for lab in labels.values()], axis=0))
        if not len(rows):
            return []
        prepared = prepare_images(self.dataset, list(frame["ref"].iloc[rows]), self.exp.image_size,
                                  Path(self.config["run"]["cache_dir"]), float(self.spec.options.get("crop", 1.0)))
        with trainer.reading(prepared.images):
            predicted = trainer.predict(Split(np.arange(len(rows)), np.zeros(len(rows), dtype=np.int64)))[1].argmax(1)
        curve = []
        for threshold, at in labels.items():
            counted = prepared.valid & (at[rows] != UNLABELLED)
            curve.append({"threshold": threshold, "galaxies": int(counted.sum()),
                          "accuracy": round(float((predicted[counted] == at[rows][counted]).mean()), 5)
                          if counted.any() else None})
        return curve

    def _training_seconds(self) -> float:
        """From the run's start to now; an evaluation alone (--skip, evaluate) keeps the figure the training
        recorded rather than counting the days between."""
        earlier = read_json(self.run_dir / "results" / "metrics.json") if self.mode == "evaluate" else None
        if earlier and isinstance(earlier.get("seconds"), (int, float)):
            return float(earlier["seconds"])
        return round(time.time() - float(self.reporter.get("started", self.started)), 1)

    def _fraction_results(self, task: VoteFractionTask, splits: dict[str, Split], test: Split,
                          predictions: np.ndarray, loss: float | None, images: np.ndarray, measured: str,
                          extra: dict[str, Any], folder: Path, val_predictions: np.ndarray) -> dict[str, Any]:
        """The vote-fraction artefacts of `predictions` in folder/results; `loss` None: the mean squared error
        over the catalogue's answers (a booster has no loss of the network's kind)."""
        truth = test.labels[:, :task.outputs]
        with np.errstate(all="ignore"):
            baseline = np.nan_to_num(np.nanmean(splits["train"].labels[:, :task.outputs], axis=0))
        derived = derived_classification(task.tree, self.classes, self.rule_labels[test.indices], predictions,
                                         self.exp.labels)
        val = splits["val"]
        return write_fraction_results(
            folder / "results", task.tree, Measured(self.ids[test.indices], truth, predictions), baseline,
            mean_squared_error(predictions, truth) if loss is None else loss, images, test.indices,
            self.exp.mistakes, extra, measured, derived,
            Measured(self.ids[val.indices], val.labels[:, :task.outputs], val_predictions))

    def stopped_early(self) -> None:
        """A stop in a phase with no training step to finish: say what it means for the run."""
        phase = str(self.reporter.get("state", "starting"))
        if self.mode in AGAIN_MODES and self.reporter.get("before") == "finished":
            message = f"the {self.mode} was stopped; the run stays finished with its earlier results"
            if self.rank == 0:
                self.emit("stopped", phase=phase, message=message)
                self.state("finished", message=message)
            return
        if phase == "evaluating":
            message = (f"stopped while evaluating; the model is trained: `galaxy-tui train "
                       f"{self.config['run']['experiment']} --skip` evaluates its best checkpoint")
        else:
            message = f"stopped while {phase}, before the first step; launch it again to start"
        if self.rank == 0:
            self.emit("stopped", phase=phase, message=message)
            self.state("stopped", message=message)

    def fail(self, message: str, trace: str | None = None) -> None:
        if self.rank != 0:
            self.peers.report(message)  # rank 0 alone writes status and events: tell it (and the supervisor)
            return
        self.emit("failed", message=message, traceback=trace)
        self.state("failed", message=message)

    def fail_after_peer(self, message: str, trace: str | None) -> None:
        """Under DDP a rank's collective breaks when a peer dies: report the peer's reason, not the symptom."""
        deadline = time.monotonic() + 3.0
        peer = self.peers.first()
        while peer is None and self.world > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            peer = self.peers.first()
        self.fail(peer or message, None if peer else trace)

    def close(self, destroy_group: bool = True) -> None:
        self.peers.stop()
        for logger in (self.gpu_logger, self.host_logger):
            if logger is not None:
                logger.stop()
        self.reporter.close()
        if destroy_group:
            self.collectives.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="galaxy_tui.train.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--mode", choices=("train", "resume", "evaluate", "boost"), default="train")
    args = parser.parse_args(argv)
    try:
        worker = Worker(args.run_dir.resolve(), args.mode)
    except (GalaxyError, OSError) as exc:  # nothing of the run can be written: the log says why
        print(f"galaxy-tui worker: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        return worker.run()
    except StopRequested:
        worker.stopped_early()
        return 0
    except (GalaxyError, RunFailed) as exc:
        print(f"galaxy-tui worker: {exc}", file=sys.stderr)
        worker.fail(str(exc))
        return 1
    except Exception as exc:  # a bug: keep the traceback in worker.log and the event
        problem = storage_problem(exc) if isinstance(exc, OSError) else None
        if problem is not None:  # a full, read-only or forbidden disk: a message, not a bug's traceback
            print(f"galaxy-tui worker: {problem}", file=sys.stderr)
            worker.fail(problem)
            return 1
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        worker.fail_after_peer(f"{type(exc).__name__}: {exc}", trace)
        return 1
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
