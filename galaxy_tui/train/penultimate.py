"""The penultimate layer's output (the head's input) for every galaxy of a split, read through the trainer's own
prediction path (its batch size, its out-of-memory halving)."""

from __future__ import annotations

import numpy as np
import torch

from galaxy_tui.train.loop import RunFailed, Split, Trainer
from galaxy_tui.train.models import head_layer


def penultimate(trainer: Trainer, split: Split, what: str) -> np.ndarray:
    """galaxies x features (float32); `what` names the galaxies in the message of an interrupted pass."""
    captured: list[torch.Tensor] = []
    hook = head_layer(trainer.model).register_forward_hook(
        lambda _module, inputs, _output: captured.append(inputs[0].detach().float().cpu()))
    try:
        trainer.predict(split)
    finally:
        hook.remove()
    values = torch.cat(captured).numpy() if captured else np.zeros((0, 0), np.float32)
    if len(values) != len(split.indices):  # an out-of-memory retry ran part of a batch twice
        raise RunFailed(f"reading the features of the {what} galaxies was interrupted by an out-of-memory retry; "
                        f"run it again")
    return values
