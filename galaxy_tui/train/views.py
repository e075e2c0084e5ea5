"""Rotation-invariant models by cyclic pooling (Dieleman et al. 2015, the Kaggle Galaxy Zoo challenge's winner):
each galaxy is shown to one shared network in several orientations at once, the penultimate features are averaged
over them, and the head reads the average. Galaxies have no up, so a prediction should not depend on the turn.

- 4 views: the quarter turns;
- 8: the quarter turns and their mirror images (the dihedral group of the square);
- 16: those 8 of the image and of the image turned by 45 degrees (its corners filled with the mean colour).

The views go through the network as one batch (views x galaxies), so the micro-batch probe, the memory it measures
and the out-of-memory re-split all count them."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2.functional import rotate

from galaxy_tui.train.models import head_layer


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips and quarter turns of a batch of images (N, C, H, W), the identity first."""
    turns = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    return turns + [torch.flip(turn, dims=(3,)) for turn in turns]


def view_batch(x: torch.Tensor, views: int) -> torch.Tensor:
    """(views * N, C, H, W): every view of the batch, view by view, the image as it is first (the quarter turns
    come first among the 8 flips and quarter turns TTA uses)."""
    if views == 16:
        return torch.cat([view_batch(x, 8), view_batch(rotate(x, 45.0, interpolation=InterpolationMode.BILINEAR), 8)])
    return torch.cat(dihedral_views(x)[:views])


class ViewPooled(nn.Module):
    """A backbone over `views` orientations of each galaxy; its head reads the features averaged over them. The
    head stays where the backbone has it (a hook averages its input), so the weights keep their names under
    `backbone.` and the finetuning blocks, the features read for boosting and the in-domain check are the
    backbone's own."""

    def __init__(self, model: nn.Module, views: int):
        super().__init__()
        self.backbone, self.views = model, views
        head_layer(model).register_forward_pre_hook(self._pool)

    def _pool(self, _head: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        features = inputs[0]
        return (features.reshape(self.views, -1, features.shape[-1]).mean(0), *inputs[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(view_batch(x, self.views))


def with_views(model: nn.Module, views: int) -> nn.Module:
    return model if views == 1 else ViewPooled(model, views)
