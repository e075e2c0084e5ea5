"""The finetuning recipe: the head alone for the first epochs, then the top blocks too, each block's learning
rate `lr_decay` times the one above it (Zoobot's layer-wise decay); the norms and dropouts of frozen blocks
stay in eval mode, so a frozen block computes exactly what it was pretrained to.

Blocks are timm's coarse parameter groups for a timm or Zoobot encoder (ConvNeXt: the stem and the four
stages), and for every other model its top-level children (a lone container such as torchvision's
`features` opened one level)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from galaxy_tui.registry import Finetune
from galaxy_tui.train.encoders import EncoderNet
from galaxy_tui.train.models import head_layer
from galaxy_tui.train.views import ViewPooled

MIN_BLOCKS = 3  # fewer top-level children than this: open the biggest one


@dataclass(frozen=True)
class Block:
    label: str                 # "stages.3", "layer4", "features.7"
    names: tuple[str, ...]     # its parameters' names in the model


@dataclass(frozen=True)
class Phase:
    """What trains in an epoch: the head and the top `blocks` blocks."""
    blocks: int


def _label(names: list[str]) -> str:
    """How a block is called: its top-level module, with the index when it is one of a sequence ("stages.3",
    "layer4", "blocks.6+conv_head+bn2")."""
    tops: dict[str, set[str]] = {}
    for name in names:
        parts = name.split(".")
        tops.setdefault(parts[0], set()).add(parts[1] if len(parts) > 2 else "")
    return "+".join(f"{top}.{next(iter(second))}" if len(second) == 1 and next(iter(second)).isdigit() else top
                    for top, second in tops.items())


def _timm_blocks(encoder: nn.Module, prefix: str) -> tuple[list[Block], list[str]] | None:
    """timm's coarse groups, bottom to top, and the names of the encoder's own head parameters (e.g. ConvNeXt's
    head.norm), which train with the head."""
    matcher = getattr(encoder, "group_matcher", None)
    if matcher is None:
        return None
    from timm.models import group_parameters

    blocks, head = [], []
    for _, names in sorted(group_parameters(encoder, matcher(coarse=True)).items()):
        if all(name.startswith("head.") for name in names):
            head += [prefix + name for name in names]
        else:
            blocks.append(Block(_label(names), tuple(prefix + name for name in names)))
    return blocks, head


def _child_blocks(model: nn.Module, head: nn.Module) -> tuple[list[Block], list[str]]:
    """Top-level children with parameters, bottom to top; the child holding the head is the head."""
    head_child = next(name for name, child in model.named_children()
                      if child is head or any(m is head for m in child.modules()))
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        groups.setdefault(name.split(".")[0], []).append(name)
    head_names = groups.pop(head_child)
    parts = [(key, names) for key, names in groups.items()]
    while len(parts) < MIN_BLOCKS:
        biggest = max(range(len(parts)), key=lambda i: len(parts[i][1]), default=None)
        if biggest is None:
            break
        key, names = parts[biggest]
        depth = key.count(".") + 1
        opened: dict[str, list[str]] = {}
        for name in names:
            pieces = name.split(".")
            opened.setdefault(".".join(pieces[:depth + 1]) if len(pieces) > depth + 1 else key, []).append(name)
        if len(opened) < 2:
            break
        parts[biggest:biggest + 1] = list(opened.items())
    return [Block(key, tuple(names)) for key, names in parts], head_names


def model_blocks(model: nn.Module) -> tuple[list[Block], list[str]]:
    """The model's blocks, bottom to top, and the names of the parameters that train with the head."""
    if isinstance(model, ViewPooled):  # the backbone's own blocks, named as the pooled model holds them
        blocks, head = model_blocks(model.backbone)
        return ([Block(block.label, tuple(f"backbone.{name}" for name in block.names)) for block in blocks],
                [f"backbone.{name}" for name in head])
    if isinstance(model, EncoderNet):
        found = _timm_blocks(model.encoder, "encoder.")
        if found is not None:
            blocks, encoder_head = found
            return blocks, encoder_head + [f"head.{name}" for name, _ in model.head.named_parameters()]
    return _child_blocks(model, head_layer(model))


class FinetunePlan:
    """Which parameters train in each epoch and at what learning rate. The optimizer's groups are built once
    (head, then the unfrozen blocks from the top), so a checkpoint's optimizer state fits at any epoch."""

    def __init__(self, model: nn.Module, recipe: Finetune):
        self.recipe = recipe
        self.model = model
        blocks, self.head_names = model_blocks(model)
        self.total_blocks = len(blocks)
        wanted = self.total_blocks if recipe.unfreeze_blocks < 0 else recipe.unfreeze_blocks
        self.asked_beyond = wanted > self.total_blocks
        self.unfrozen = list(reversed(blocks))[:wanted]  # top first
        self.parameters = dict(model.named_parameters())
        self.phase: Phase | None = None
        self._frozen_modules: list[nn.Module] = []

    def param_groups(self, lr: float) -> list[dict[str, object]]:
        groups: list[dict[str, object]] = [{"params": [self.parameters[n] for n in self.head_names], "lr": lr}]
        for depth, block in enumerate(self.unfrozen):
            groups.append({"params": [self.parameters[n] for n in block.names],
                           "lr": lr * self.recipe.lr_decay ** depth})
        return groups

    def phase_of(self, epoch: int) -> Phase:
        return Phase(0 if epoch <= self.recipe.frozen_epochs else len(self.unfrozen))

    @property
    def widest(self) -> Phase:
        """The phase that trains the most: what the memory probe measures."""
        return Phase(len(self.unfrozen))

    def _trainable(self, phase: Phase) -> Iterator[str]:
        yield from self.head_names
        for block in self.unfrozen[:phase.blocks]:
            yield from block.names

    def apply(self, phase: Phase) -> bool:
        """Set requires_grad for this phase; whether anything changed."""
        if phase == self.phase:
            return False
        self._make_trainable(set(self._trainable(phase)))
        self.phase = phase
        return True

    def _make_trainable(self, trainable: set[str] | None) -> None:
        """Only these parameters train (None: all); the modules left wholly frozen are noted once, here."""
        for name, parameter in self.parameters.items():
            parameter.requires_grad_(trainable is None or name in trainable)
        self._frozen_modules = [module for module in self.model.modules()
                                if (own := list(module.parameters())) and not any(p.requires_grad for p in own)]

    @contextmanager
    def widest_for_a_while(self) -> Iterator[None]:
        before = self.phase
        self.apply(self.widest)
        try:
            yield
        finally:
            if before is not None:
                self.apply(before)
            else:
                self._make_trainable(None)
                self.phase = None

    def settle_modes(self) -> None:
        """After model.train(): the modules whose parameters are all frozen go back to eval mode (frozen
        batch-norm statistics, no dropout or drop-path inside frozen blocks)."""
        for module in self._frozen_modules:
            module.eval()

    def describe(self, phase: Phase) -> dict[str, object]:
        """For the `trainable` event: the blocks that train, and how many parameters do."""
        trainable = set(self._trainable(phase))
        count = sum(p.numel() for n, p in self.parameters.items() if n in trainable)
        return {"blocks": [b.label for b in self.unfrozen[:phase.blocks]], "of_blocks": self.total_blocks,
                "unfreeze": len(self.unfrozen),
                "parameters": count, "total_parameters": sum(p.numel() for p in self.parameters.values()),
                "lr_decay": self.recipe.lr_decay, "frozen_epochs": self.recipe.frozen_epochs}
