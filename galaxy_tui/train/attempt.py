"""One attempt of a run inside the worker: what every job shares — the frozen run, the ranks, the voice (events
and status.json), the stop flag, the device — and the galaxies it prepares. The jobs (training_job,
evaluation_job, boosting_job) are modules of their own that take an Attempt. Under torchrun, rank 0 alone
writes events, status and checkpoints."""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from galaxy_tui.analysis.classification_results import volunteer_table
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.catalog import Dataset
from galaxy_tui.data.overrides import RUN_COPY, Applied, read_overrides
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.data.splits import labelled_split, write_split
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import AGAIN_MODES
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.train.device import choose_placement, run_gpu_uuids
from galaxy_tui.train.distributed import Collectives, PeerFailures, Topology, backend_for
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.manifest import build_manifest, write_manifest
from galaxy_tui.train.models import build_model
from galaxy_tui.train.reporting import GpuLogger, HostLogger, Reporter
from galaxy_tui.train.tasks import Task, task_for
from galaxy_tui.train.views import with_views

_LOGGED = frozenset({"started", "data", "probe_trial", "probe_done", "resumed", "epoch", "oom", "checkpoint",
                     "warning", "trainable", "stopped", "eval", "finished", "early_stop", "telemetry"})


class StopRequested(Exception):
    """A stop arrived in a phase with no step to finish (preparing, probing, evaluating)."""


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_: Any) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise StopRequested


@dataclass
class Prepared:
    """The attempt's galaxies: their prepared images, the split and its targets, and what reports need."""
    dataset: Dataset
    images: np.ndarray
    splits: dict[str, Split]
    task: Task
    ids: np.ndarray                 # every labelled galaxy's id, by row of `images`
    rule_labels: np.ndarray         # the labelling rule's class per row (vote fractions: where it gives one)
    volunteers: pd.DataFrame | None  # the volunteers' agreement per row, where the catalogue has votes

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes


class Attempt:
    def __init__(self, run_dir: Path, mode: str):
        self.run_dir = run_dir
        self.mode = mode
        self.frozen = read_frozen(run_dir)
        self.config = self.frozen.config
        self.exp, self.spec = self.frozen.experiment, self.frozen.dataset
        self.topology = Topology.from_environment()
        self.rank, self.world = self.topology.rank, self.topology.world
        self.reporter = Reporter(run_dir, writes=self.rank == 0)
        self.stop = StopFlag()
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

    # ------------------------------------------------------------------ the voice
    def emit(self, kind: str, /, **fields: Any) -> None:
        self.reporter.emit(kind, **fields)
        if kind in _LOGGED and self.rank == 0:
            details = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("per_class", "traceback", "fitted"))
            print(f"{time.strftime('%H:%M:%S')} {kind} {details}", flush=True)

    def state(self, state: str, **fields: Any) -> None:
        self.reporter.update(state=state, **fields)

    def log_rank(self, line: str) -> None:
        """Every rank's own log (ranks/<N>/stdout.log under torchrun): what this rank decided."""
        if self.world > 1:
            print(f"rank {self.rank}: {line}", flush=True)

    @property
    def number(self) -> int:
        return int(self.reporter.get("attempt", 1))

    def begin(self) -> None:
        random.seed(self.exp.seed)
        np.random.seed(self.exp.seed)
        torch.manual_seed(self.exp.seed)
        self.peers.watch(self._peer_failed)
        self.state("preparing", pid=os.getpid(), epochs=self.exp.epochs, attempt=self.number, mode=self.mode)
        self.emit("started", run=self.run_dir.name, experiment=self.config["run"]["experiment"], attempt=self.number,
                  mode=self.mode, device=str(self.placement.device), precision=self.placement.precision,
                  torch=torch.__version__, host=socket.gethostname(), world=self.world, gpus=self.gpu_uuids)

    # ------------------------------------------------------------------ the galaxies
    def prepare(self) -> Prepared:
        self.state("preparing")
        dataset = load_dataset(self.spec, self.frozen.cache_dir)
        for problem in dataset.problems:
            self.emit("warning", message=problem)
        split_file = self.run_dir / "split.csv"
        chosen = labelled_split(dataset, self.exp, split_file, read_overrides(self.run_dir / RUN_COPY))
        frame, labels, assignment = chosen.frame, chosen.labels, chosen.assignment
        if self.rank == 0 and not split_file.exists():
            write_split(split_file, frame["id"], assignment)

        def progress(done: int, total: int) -> None:
            self.emit("prepare", done=done, total=total)
            self.stop.check()  # every few hundred images: a stop while preparing is honoured at once

        # Before the process group exists, so a long first build meets no collective timeout: rank 0
        # builds (and shows progress); the others wait for its word on disk, then open the same cache.
        if self.rank != 0:
            self.peers.wait_for_images(self.stop.check)
        prepared = prepare_images(dataset, list(frame["ref"]), self.exp.image_size, self.frozen.cache_dir,
                                  self.frozen.crop, progress if self.rank == 0 else None)
        if self.rank == 0 and self.world > 1:
            self.peers.images_ready()
        if prepared.unreadable:
            self.emit("warning", message=f"{prepared.unreadable} image(s) could not be read and were skipped")
        rows = {name: np.flatnonzero((assignment == name) & prepared.valid) for name in ("train", "val", "test")}
        task = task_for(chosen.tree, len(dataset.classes), self.exp, labels[rows["train"]])
        targets = task.target_rows(dataset, frame, labels)
        splits = {name: Split(indices, targets[indices]) for name, indices in rows.items()}
        self.reporter.update(metric=task.metric)  # what the runs list's "best" measures
        if self.rank == 0:
            record, diff = build_manifest(self.number, self.exp.seed, self.placement.device,
                                          {"name": dataset.name, "kind": dataset.kind, "location": dataset.location,
                                           "fingerprint": dataset.fingerprint,
                                           **self._overrides_record(chosen.applied)}, frame)
            write_manifest(self.run_dir, record, diff)
        self.emit("data", classes=list(dataset.classes), counts=chosen.counts,
                  split={k: int(len(v.indices)) for k, v in splits.items()})
        volunteers = volunteer_table(frame, labels) if dataset.has_votes and task.reports_volunteers else None
        return Prepared(dataset, prepared.images, splits, task, frame["id"].to_numpy(), labels, volunteers)

    def _overrides_record(self, applied: Applied) -> dict[str, object]:
        """What the person's decisions changed, for the manifest (and `show`)."""
        frozen = self.config.get("overrides")
        return {"overrides": applied.as_record(str(frozen["digest"]))} if frozen else {}

    def start_collectives(self) -> None:
        if self.collectives.distributed:
            self.collectives.start()
            self.emit("distributed", backend=self.collectives.backend, world=self.world)

    def trainer(self, prepared: Prepared) -> Trainer:
        """The model (pretrained weights only for a fresh start: a checkpoint holds every weight) in a Trainer."""
        if self.mode == "resume" and not (self.run_dir / "checkpoints" / "last.pt").exists():
            raise GalaxyError(f"{self.run_dir / 'checkpoints' / 'last.pt'} is missing: there is nothing to resume "
                              f"from, and training again from epoch 1 would overwrite best.pt; --skip evaluates "
                              f"best.pt, --restart starts a new run")
        fresh = self.mode == "train"
        weights = self.frozen.workspace / Path(self.exp.weights).expanduser() if self.exp.weights and fresh else None
        model = build_model(self.exp.model, prepared.task.outputs, self.exp.pretrained and fresh, weights)
        pretrained_size = getattr(model, "pretrained_size", None)
        if pretrained_size and pretrained_size != self.exp.image_size:
            self.emit("warning", message=f"{self.exp.model} was pretrained on {pretrained_size} px images; this "
                                         f"experiment feeds it {self.exp.image_size} px (image_size)")
        model = with_views(model, self.exp.views).to(self.placement.device)
        if self.placement.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # Same initial weights everywhere (seeded above), then a stream of random numbers per rank, so
        # the ranks' dropout masks and augmentations differ.
        seed = self.exp.seed + self.rank
        torch.manual_seed(seed)
        self.log_rank(f"seed {seed}")
        steps = max(1, len(prepared.splits["train"].indices) // self.exp.effective_batch)
        if self.exp.max_steps_per_epoch:
            steps = min(steps, self.exp.max_steps_per_epoch)
        return Trainer(self.exp, model, self.placement, prepared.images, prepared.splits["train"], prepared.task,
                       self.emit, steps, self.collectives)

    # ------------------------------------------------------------------ agreement between ranks, energy
    def stop_agreed(self) -> bool:
        return self.collectives.any(self.stop.requested)

    def energy(self) -> tuple[float | None, str]:
        """The run's GPUs' energy so far and how it is known (rank 0 measures every GPU of the node)."""
        if self.gpu_logger is None:
            return None, "measured by rank 0"
        return self.gpu_logger.energy()

    # ------------------------------------------------------------------ endings
    def _peer_failed(self, message: str) -> None:
        """Another rank failed; this one may be stuck in a collective that will never complete."""
        if self.rank == 0:
            self.fail(message)
        self.close(destroy_group=False)
        os._exit(1)

    def stopped_early(self) -> None:
        """A stop in a phase with no training step to finish: say what it means for the run."""
        phase = str(self.reporter.get("state", "starting"))
        if self.mode in AGAIN_MODES and self.reporter.get("before") == "finished":
            message = f"the {self.mode} was stopped; the run stays finished with its earlier results" + (
                f" (galaxy-tui curate {self.run_dir.name} goes on with the embedding where it stopped)"
                if self.mode == "curate" else "")
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
