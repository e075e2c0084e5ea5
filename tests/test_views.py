"""Rotation-invariant models (`views`): one shared network over each galaxy's orientations, the features averaged
before the head. Invariance is exact for the orientations pooled; the views share one batch, so the probe's
memory and the out-of-memory re-split count them; the registry, finetuning and a real run take them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from torch import nn

from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Experiment, load_registry
from galaxy_tui.train.device import choose_placement
from galaxy_tui.train.finetune import model_blocks
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.models import build_model, head_layer
from galaxy_tui.train.tasks import ClassificationTask
from galaxy_tui.train.views import ViewPooled, view_batch, with_views


def turned(x: torch.Tensor, quarter: int, mirror: bool) -> torch.Tensor:
    x = torch.rot90(x, quarter, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if mirror else x


@pytest.mark.parametrize("name", ["tiny-cnn", "resnet18"])
def test_the_pooled_model_answers_the_same_for_every_orientation_it_pools(name: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 3, 48, 48)
    plain = build_model(name, 4).eval()
    pooled = with_views(build_model(name, 4), 8).eval()
    with torch.no_grad():
        reference = pooled(x)
        for quarter in range(4):
            for mirror in (False, True):
                torch.testing.assert_close(pooled(turned(x, quarter, mirror)), reference, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(plain(x), plain(turned(x, 1, False)), atol=1e-4)  # a plain one does not
    quarters = with_views(build_model(name, 4), 4).eval()
    with torch.no_grad():
        torch.testing.assert_close(quarters(turned(x, 3, False)), quarters(x), atol=1e-5, rtol=1e-4)


def test_sixteen_views_add_the_45_degree_turns_and_the_head_reads_the_average() -> None:
    x = torch.rand(2, 3, 32, 32)
    batch = view_batch(x, 16)
    assert batch.shape == (32, 3, 32, 32)
    torch.testing.assert_close(batch[:2], x)
    torch.testing.assert_close(batch[8:10], torch.flip(x, dims=(3,)))  # the mirror image after the 4 quarter turns
    diagonal = batch[16:18]
    assert not any(torch.allclose(diagonal, batch[2 * k:2 * k + 2], atol=1e-3) for k in range(8))  # a new image
    torch.testing.assert_close(batch[18:20], torch.rot90(diagonal, 1, dims=(2, 3)))
    pooled = with_views(build_model("tiny-cnn", 3), 16).eval()
    seen: list[torch.Size] = []
    head_layer(pooled).register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape))
    with torch.no_grad():
        out = pooled(x)
        features = pooled.backbone[:-1](batch)  # the backbone without its head: every view's features
    assert out.shape == (2, 3) and seen == [torch.Size([2, 128])]  # features hooks see the pooled features
    head = head_layer(pooled)
    torch.testing.assert_close(out, nn.functional.linear(features.reshape(16, 2, -1).mean(0), head.weight, head.bias))


def _trainer(model: nn.Module, monkeypatch: pytest.MonkeyPatch, inject: str = "") -> Trainer:
    monkeypatch.setenv("GALAXY_TUI_INJECT_OOM", inject)
    images = np.random.default_rng(0).integers(0, 255, (64, 16, 16, 3), dtype=np.uint8)
    experiment = Experiment(name="t", dataset="d", effective_batch=32, augment=False, grad_clip=0.0,
                            scheduler="none", sampler="none", label_smoothing=0.0, views=8)
    labels = np.arange(64) % 3
    trainer = Trainer(experiment, model, choose_placement("fp32", False, False), images, Split(np.arange(64), labels),
                      ClassificationTask(3, experiment, labels), lambda kind, **f: None, steps_per_epoch=2)
    trainer.micro_batch = 16
    return trainer


def _pooled_cnn() -> nn.Module:
    torch.manual_seed(0)
    return with_views(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                    nn.Linear(8, 3)), 8)


def test_the_probe_trial_runs_every_view_and_an_oom_resplit_gives_the_same_update(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's trial of 16 galaxies sends their 128 views through the network in one pass, so the memory it
    measures on a GPU is the views'. A CUDA out-of-memory error is simulated (injected) at step 2: the galaxies
    are re-split with their views, and the update equals the unsplit one."""
    model = _pooled_cnn()
    passes: list[int] = []
    model.backbone[0].register_forward_hook(lambda _m, inputs, _o: passes.append(len(inputs[0])))
    assert _trainer(model, monkeypatch).probe_trial(16).fits
    assert passes and set(passes) == {16 * 8}
    clean = _trainer(_pooled_cnn(), monkeypatch)
    clean.train_epoch(1, lambda: False)
    spiked = _trainer(_pooled_cnn(), monkeypatch, "steps=2 below=8")
    spiked.train_epoch(1, lambda: False)
    assert spiked.micro_batch == 8 and clean.micro_batch == 16
    for a, b in zip(clean.model.parameters(), spiked.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_finetuning_blocks_are_the_backbone_s_under_the_pooled_names() -> None:
    pooled = with_views(build_model("resnet18", 3), 4)
    assert isinstance(pooled, ViewPooled)
    blocks, head = model_blocks(pooled)
    assert [b.label for b in blocks] == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    names = [n for b in blocks for n in b.names] + head
    assert sorted(names) == sorted(n for n, _ in pooled.named_parameters()) and head == ["backbone.fc.weight",
                                                                                         "backbone.fc.bias"]


def test_the_registry_takes_1_4_8_16_and_keeps_older_runs_hashes(tmp_path: Path) -> None:
    def experiment(views: object) -> Experiment:
        raw = {"datasets": {"demo": {"kind": "synthetic"}},
               "experiments": {"e": {"dataset": "demo", **({} if views is None else {"views": views})}}}
        (tmp_path / "experiments.toml").write_text(tomli_w.dumps(raw))
        return load_registry(tmp_path / "experiments.toml").experiment("e")

    assert experiment(None).views == 1 and "views" not in experiment(None).table()  # hashes of older runs hold
    assert experiment(16).views == 16 and experiment(16).table()["views"] == 16
    with pytest.raises(GalaxyError, match=r"views.*= 3 is not one of 1, 4, 8, 16"):
        experiment(3)
