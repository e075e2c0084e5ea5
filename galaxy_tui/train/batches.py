"""Batches from the prepared uint8 cache: sampling order, augmentation on uint8 tensors, normalisation."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import WeightedRandomSampler

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def epoch_order(labels: np.ndarray, sampler: str, seed: int, epoch: int) -> np.ndarray:
    """Indices for one epoch, the same for the same (seed, epoch): resume replays the same order.

    "weighted" is torch's WeightedRandomSampler (with replacement, weights inverse to class
    frequency); otherwise a plain permutation.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if sampler == "weighted":
        counts = np.bincount(labels)
        weights = torch.from_numpy(1.0 / counts[labels])
        return np.fromiter(WeightedRandomSampler(weights, len(labels), replacement=True, generator=generator),
                           dtype=np.int64, count=len(labels))
    return torch.randperm(len(labels), generator=generator).numpy()


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Galaxies have no up or left: flips, 90-degree turns, small rotations and shifts, mild brightness.

    Runs where `batch` lives (the GPU in training); the random draws come from the CPU `generator`
    so a run's augmentation is reproducible and its state fits in a checkpoint.
    """
    b, device = batch.shape[0], batch.device
    x = batch.float()
    flip = (torch.rand(b, generator=generator) < 0.5).to(device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    turns = torch.randint(0, 4, (b,), generator=generator)
    for k in range(1, 4):
        # which images turn is decided on the CPU draws: no device sync, no boolean-mask indexing
        chosen = torch.nonzero(turns == k).flatten()
        if len(chosen):
            rows = chosen.to(device, non_blocking=True)
            x[rows] = torch.rot90(x[rows], k, dims=(2, 3))
    angle = (torch.rand(b, generator=generator) - 0.5) * (2 * math.pi / 18)  # +-10 degrees
    shift = (torch.rand(b, 2, generator=generator) - 0.5) * 0.08
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(device), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    brightness = 1.0 + (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * 0.2
    return (x * brightness.to(device)).clamp(0, 255)


@functools.cache
def _stats_on(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return MEAN.to(device), STD.to(device)  # copied once per device, not once per micro-batch


def normalise(batch: torch.Tensor) -> torch.Tensor:
    mean, std = _stats_on(batch.device)
    return (batch.float() - mean) / std
