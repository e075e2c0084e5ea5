"""Backbones by name, with the classification head sized for the dataset's classes.

torchvision weights are used only if already in the local torch cache: nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import MODEL_NAMES, is_encoder_name
from galaxy_tui.train.encoders import build_encoder_model


def _conv_block(c_in: int, c_out: int, convs: int = 1, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(2))
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


def tiny_cnn(num_classes: int) -> nn.Module:
    return nn.Sequential(_conv_block(3, 24), _conv_block(24, 48), _conv_block(48, 96),
                         nn.Conv2d(96, 128, 3, padding=1), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, num_classes))


def galaxy10_cnn(num_classes: int) -> nn.Module:
    """Five conv blocks (32..512 channels, two convs each), global pooling, a dropout MLP head."""
    widths = (32, 64, 128, 256, 512)
    blocks = [_conv_block(3 if i == 0 else widths[i - 1], w, convs=2, dropout=0.1) for i, w in enumerate(widths)]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 256),
                         nn.ReLU(inplace=True), nn.Dropout(0.4), nn.Linear(256, num_classes))


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    if hasattr(model, "fc") and isinstance(model.fc, nn.Linear):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif hasattr(model, "head") and isinstance(model.head, nn.Linear):
        model.head = nn.Linear(model.head.in_features, num_classes)
    elif hasattr(model, "classifier"):
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)
    else:  # pragma: no cover - every name in MODEL_NAMES is handled above
        raise GalaxyError(f"cannot resize the head of {type(model).__name__}")
    return model


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    builder: Callable[..., nn.Module] = getattr(torchvision.models, name)
    if not pretrained:
        return builder(weights=None)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    file_name = weights.url.rsplit("/", 1)[-1]
    cached = torch.hub.get_dir() + "/checkpoints/" + file_name
    if not os.path.exists(cached):
        raise GalaxyError(f"pretrained weights for {name} are not in the local torch cache ({cached}); "
                          f"nothing is downloaded at run time. Copy {file_name} there, or set pretrained = false.")
    model = builder(weights=None)
    model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    return model


def build_model(name: str, num_classes: int, pretrained: bool = False, weights: Path | None = None) -> nn.Module:
    """The named model with `num_classes` outputs; `pretrained` / `weights` start a timm or Zoobot encoder from
    its published weights or a file (torchvision models: pretrained weights from the torch cache)."""
    if is_encoder_name(name):
        return build_encoder_model(name, num_classes, pretrained, weights)
    if name not in MODEL_NAMES:
        raise GalaxyError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    if name == "tiny-cnn":
        return tiny_cnn(num_classes)
    if name == "galaxy10-cnn":
        return galaxy10_cnn(num_classes)
    return _replace_head(_torchvision(name, pretrained), num_classes)


def head_layer(model: nn.Module) -> nn.Linear:
    """The layer that maps the penultimate representation to the outputs: the last Linear of every model
    built here (its input is what feature extraction keeps)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise GalaxyError(f"{type(model).__name__} has no linear head to take features from")
    return linears[-1]
