"""timm encoders with random weights, saved as a weights file: what a published encoder looks like on disk,
without the internet."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from safetensors.torch import save_file


def random_encoder(architecture: str, in_chans: int = 3, seed: int = 1, classes: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(architecture, pretrained=False, num_classes=classes, in_chans=in_chans)


def saved(encoder: torch.nn.Module, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path))
    return path
