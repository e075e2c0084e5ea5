"""The registry's typed objects: datasets, experiments (with their labelling, optimizer, finetune and Slurm
settings), the workspace, and the names and values their keys may take."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from galaxy_tui.errors import GalaxyError

REGISTRY_FILE = "experiments.toml"

DATASET_KINDS: dict[str, tuple[str, ...]] = {
    # kind -> keys that must be present in its table
    "synthetic": (),
    "galaxy10-h5": ("path",),
    "galaxy-mnist-h5": ("train", "test"),
    "gz2-hart16": ("catalog", "mapping", "images"),
    "kaggle-gz2": ("solutions", "images"),
    "gz-decals5": ("catalog", "images"),
    "image-folder": ("path",),
}
# Kinds whose classes come from the files (a folder per class, a label column), not from volunteers' votes:
# the labelling keys (threshold, votes, artifact) do not apply to them.
FIXED_LABEL_KINDS = ("galaxy10-h5", "galaxy-mnist-h5", "image-folder")
DATASET_OPTIONAL: dict[str, tuple[str, ...]] = {
    "synthetic": ("count", "size", "seed", "mislabel", "rare"),
    "gz2-hart16": ("fractions",),
    "gz-decals5": ("fractions",),
    "image-folder": ("merge", "exclude"),
}
COMMON_KEYS = ("kind", "crop", "notes")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_NAME = 100
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SAMPLERS = ("weighted", "class-weights", "none")
SCHEDULERS = ("cosine", "onecycle", "plateau", "none")
OPTIMIZERS = ("adamw", "sgd")
TASKS = ("classification", "vote-fractions")
EXECUTORS = ("local", "slurm")
VIEW_COUNTS = (1, 4, 8, 16)  # an experiment's `views`: the galaxy, its quarter turns, with mirrors, and at 45 degrees
LOSSES = {"classification": ("cross-entropy",), "vote-fractions": ("mse", "question-ce", "dirichlet-multinomial")}
VOTE_KINDS = ("synthetic", "gz2-hart16", "kaggle-gz2", "gz-decals5")
COUNTLESS_KINDS = ("kaggle-gz2",)  # vote fractions without the volunteers' counts


@dataclass(frozen=True)
class Labelling:
    threshold: float = 0.8
    min_classifications: int = 10
    max_artifact: float = 0.5


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str
    options: dict[str, Any]
    base_dir: Path

    def path(self, key: str) -> Path:
        """An option that names a file or folder, resolved against the workspace."""
        return (self.base_dir / str(self.options[key])).expanduser()


@dataclass(frozen=True)
class SlurmSettings:
    """How a run is asked of Slurm ([workspace.slurm], each key overridable in [experiments.NAME.slurm])."""
    partition: str = ""
    account: str = ""
    time: str = ""              # Slurm's format: "MM", "HH:MM:SS", "D-HH:MM:SS"; "": the partition's default
    nodes: int = 1
    gpus_per_node: int = 0      # 0: no GPUs asked; the tasks per node are then the experiment's devices
    cpus_per_task: int = 0      # 0: Slurm's default
    mem: str = ""               # per node, e.g. "64G"
    requeue: bool = True        # a preempted job goes back in the queue and resumes from last.pt
    extra: tuple[str, ...] = ()  # more sbatch options, e.g. ["--qos=normal", "--constraint=a100"]


SLURM_KEYS = tuple(SlurmSettings.__dataclass_fields__)


@dataclass(frozen=True)
class Finetune:
    """Train the head alone for `frozen_epochs`, then also the top `unfreeze_blocks` blocks (-1: all), each block
    down from the top at `lr_decay` times the learning rate of the one above it (Zoobot's recipe)."""
    frozen_epochs: int = 0
    unfreeze_blocks: int = 0
    lr_decay: float = 0.75

    def table(self) -> dict[str, Any]:
        return {"frozen_epochs": self.frozen_epochs,
                "unfreeze_blocks": "all" if self.unfreeze_blocks < 0 else self.unfreeze_blocks,
                "lr_decay": self.lr_decay}


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    task: str = "classification"
    loss: str = "cross-entropy"
    questions: tuple[str, ...] = ()   # vote-fractions: the decision tree's questions to predict (empty: all)
    labels: Labelling = Labelling()
    model: str = "tiny-cnn"
    pretrained: bool = False
    weights: str = ""  # a timm/zoobot encoder's weights from this file (.safetensors or .pt), as written
    finetune: Finetune | None = None  # None: every weight trains from the first step
    executor: str = ""                # "": the workspace's
    slurm: tuple[tuple[str, Any], ...] = ()  # this experiment's [slurm] keys over the workspace's
    image_size: int = 64
    epochs: int = 10
    optimizer: str = "adamw"
    lr: float = 3e-4
    weight_decay: float = 1e-2
    momentum: float = 0.9
    sampler: str = "weighted"
    micro_batch: int | str = "auto"
    effective_batch: int = 64
    precision: str = "auto"
    channels_last: bool = True
    tf32: bool = True
    devices: int = 1
    seed: int = 0
    label_smoothing: float = 0.05
    scheduler: str = "cosine"
    grad_clip: float = 1.0
    early_stopping: int = 0
    augment: bool = True
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    vram_margin: float = 0.10
    checkpoint_minutes: float = 10.0
    mistakes: int = 24
    max_steps_per_epoch: int = 0
    tta: bool = False  # evaluate also over the 8 flips and quarter turns
    views: int = 1  # orientations each galaxy is shown in, features pooled before the head (train/views.py)

    def table(self) -> dict[str, Any]:
        """The experiment as a TOML table (as written to a run's frozen config)."""
        return {
            "dataset": self.dataset,
            "task": self.task,
            "loss": self.loss,
            "questions": list(self.questions),
            "labels": {
                "threshold": self.labels.threshold,
                "min_classifications": self.labels.min_classifications,
                "max_artifact": self.labels.max_artifact,
            },
            "model": self.model,
            "pretrained": self.pretrained,
            # absent when unused: older runs' config hashes hold
            **({"weights": self.weights} if self.weights else {}),
            **({"finetune": self.finetune.table()} if self.finetune else {}),
            "image_size": self.image_size,
            "epochs": self.epochs,
            "optimizer": {"name": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                          "momentum": self.momentum},
            "sampler": self.sampler,
            "micro_batch": self.micro_batch,
            "effective_batch": self.effective_batch,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "tf32": self.tf32,
            "devices": self.devices,
            "seed": self.seed,
            "label_smoothing": self.label_smoothing,
            "scheduler": self.scheduler,
            "grad_clip": self.grad_clip,
            "early_stopping": self.early_stopping,
            "augment": self.augment,
            "split": list(self.split),
            "vram_margin": self.vram_margin,
            "checkpoint_minutes": self.checkpoint_minutes,
            "mistakes": self.mistakes,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "tta": self.tta,
            **({"views": self.views} if self.views != 1 else {}),  # absent at 1: older runs' hashes hold
        }


@dataclass
class Registry:
    path: Path
    raw: dict[str, Any]
    runs_dir: Path
    cache_dir: Path
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    experiments: dict[str, Experiment] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # keys it does not know: kept, but said
    executor: str = "local"
    slurm: SlurmSettings = SlurmSettings()

    @property
    def workspace(self) -> Path:
        return self.path.parent

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            known = ", ".join(sorted(self.experiments)) or "none"
            raise GalaxyError(f"{self.path}: no experiment named {name!r} (known: {known}). "
                              f"Add an [experiments.{name}] table or pick one of those.")
        return self.experiments[name]

    def executor_of(self, experiment: str) -> str:
        return self.experiment(experiment).executor or self.executor

    def slurm_of(self, experiment: str) -> SlurmSettings:
        """The workspace's Slurm settings with the experiment's own keys over them."""
        return replace(self.slurm, **dict(self.experiment(experiment).slurm))

    def dataset(self, name: str) -> DatasetSpec:
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise GalaxyError(f"{self.path}: no dataset named {name!r} (known: {known}).")
        return self.datasets[name]
