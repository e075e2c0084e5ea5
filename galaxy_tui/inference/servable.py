"""A finished run's best model as one module that takes images as they are read (float RGB 0-255, N x 3 x
H x W at the run's image size) and returns what the run predicts: class probabilities or vote fractions.
Predict, export and serve all go through it, so they normalise and decode outputs exactly as evaluation did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from galaxy_tui.analysis.domain import FILE as DOMAIN_FILE
from galaxy_tui.analysis.domain import Domain, read_domain
from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.errors import GalaxyError
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.inference.task_outputs import ClassOutputs, FractionOutputs, TaskOutputs
from galaxy_tui.task_kinds import task_kind
from galaxy_tui.train.batches import MEAN, STD
from galaxy_tui.train.checkpoint import load_checkpoint
from galaxy_tui.train.models import build_model, head_layer
from galaxy_tui.train.tasks import VoteFractionTask
from galaxy_tui.train.views import with_views


class Servable(nn.Module):
    def __init__(self, model: nn.Module, reading: TaskOutputs):
        super().__init__()
        self.model = model
        self.reading = reading
        self.register_buffer("mean", MEAN.clone())
        self.register_buffer("std", STD.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model((images - self.mean) / self.std).float()
        return self.reading.head(logits)


@dataclass(frozen=True)
class Caution:
    in_domain: np.ndarray  # per image: the share of the run's validation galaxies at least as far out (0..1)
    unlike: np.ndarray     # per image: beyond the validation galaxies' 99th percentile (no calibrated confidence)


@dataclass
class LoadedRun:
    run_id: str
    servable: Servable
    device: torch.device
    task: str  # "classification" | "vote-fractions"
    reading: TaskOutputs  # what the outputs mean: columns, JSON, summaries
    outputs: list[str]  # the classes, or the answers
    image_size: int
    crop: float
    temperature: float | None  # where evaluation fitted one (classification)
    metrics: dict[str, Any] = field(default_factory=dict)
    domain: Domain | None = None  # what its training galaxies look like to it (None: evaluated before it was kept)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What a caller must do to an image before the model: the same as the run's training did."""
        return {"image_size": self.image_size, "centre_crop": self.crop, "resize": "bilinear",
                "input": "float32 RGB in 0..255, N x 3 x H x W (the model normalises with ImageNet's mean and std)",
                "output": task_kind(self.task).output_meaning}

    def caution(self, distances: np.ndarray | None) -> Caution | None:
        """How unlike the training galaxies each image is, where the run keeps the record and distances were read."""
        if self.domain is None or distances is None:
            return None
        return Caution(self.domain.in_domain(distances), self.domain.flagged(distances))

    def features_hook(self, captured: list[torch.Tensor]) -> torch.utils.hooks.RemovableHandle:
        """Collect the penultimate layer's output (the head's input) of every forward pass."""
        return head_layer(self.servable.model).register_forward_hook(
            lambda _module, inputs, _output: captured.append(inputs[0].detach().float().cpu()))


def choose_device(wanted: str | None = None) -> torch.device:
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_run(run_dir: Path, device: torch.device | None = None) -> LoadedRun:
    """The run's best checkpoint in eval mode on `device` (the GPU when there is one); a GalaxyError saying
    what is missing otherwise. Needs nothing but the run folder (its frozen config names classes and answers)."""
    frozen = read_frozen(run_dir)
    if frozen.derived:
        raise GalaxyError(f"{run_dir.name} is {'an ensemble' if frozen.derived == 'ensemble' else 'a boosted result'}"
                          f": it has no network of its own; predict with "
                          f"{frozen.config[frozen.derived].get('run') or 'a member'}.")
    best = run_dir / "checkpoints" / "best.pt"
    if not best.exists():
        raise GalaxyError(f"run {run_dir.name} has no best checkpoint (checkpoints/best.pt): it never finished an "
                          f"epoch; train it first.")
    metrics = read_metrics(run_dir) or {}
    tree = frozen.tree()  # a vote-fraction run's questions and answers, frozen with it
    reading: TaskOutputs = FractionOutputs(VoteFractionTask(tree, frozen.experiment.loss)) if tree is not None \
        else ClassOutputs()
    if tree is not None:
        outputs = list(tree.columns)
    elif frozen.classes or metrics.get("classes"):
        outputs = list(frozen.classes or metrics["classes"])
    else:
        raise GalaxyError(f"run {run_dir.name}: neither its config.toml nor its results/metrics.json names its "
                          f"classes (missing or damaged): evaluate it again (galaxy-tui evaluate {run_dir.name}).")
    device = device or choose_device()
    state = load_checkpoint(best, frozen.config_hash)
    model = with_views(build_model(frozen.experiment.model, len(outputs), pretrained=False), frozen.experiment.views)
    model.load_state_dict(state["model"])
    servable = Servable(model, reading).to(device).eval()
    temperature = (metrics.get("calibration") or {}).get("temperature")  # only classification fits one
    return LoadedRun(run_dir.name, servable, device, frozen.experiment.task, reading, outputs,
                     frozen.experiment.image_size, frozen.crop,
                     float(temperature) if isinstance(temperature, (int, float)) else None, metrics,
                     read_domain(run_dir / "results" / DOMAIN_FILE, head_layer(model).in_features))
