"""The finetuning recipe: head-only epochs leave every other weight (and batch-norm statistic) as it was, then
the top blocks train at layer-wise decayed learning rates; the probe measures the unfrozen phase; a resume
across the unfreeze boundary continues exactly; the registry reads and refuses the recipe plainly."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from torch import nn

from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.registry import Experiment, Finetune, load_registry
from galaxy_tui.run_model import trainable_parts
from galaxy_tui.runs import RunInfo, launch
from galaxy_tui.train.device import Placement
from galaxy_tui.train.finetune import model_blocks
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.models import build_model
from galaxy_tui.train.tasks import ClassificationTask
from trained_runs import REALDATA, finished, needs_realdata
from workspace_fixture import rank_lines, tiny_workspace

pytest.importorskip("timm", reason="timm is not installed")
from encoder_files import random_encoder, saved  # noqa: E402

RECIPE = Finetune(frozen_epochs=1, unfreeze_blocks=2, lr_decay=0.5)


def _trainer(model_name: str, recipe: Finetune | None = RECIPE, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    placement = Placement(torch.device("cpu"), None, False, False)  # the recipe's logic, bit-exact on any box
    model = build_model(model_name, 3).to(placement.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    experiment = Experiment(name="t", dataset="d", epochs=3, effective_batch=16, scheduler="none", sampler="none",
                            lr=1e-2, finetune=recipe)
    labels = np.arange(64) % 3
    events: list[tuple[str, dict]] = []
    trainer = Trainer(experiment, model, placement, images, Split(np.arange(64), labels),
                      ClassificationTask(3, experiment, labels), lambda kind, **f: events.append((kind, f)),
                      steps_per_epoch=4)
    trainer.events = events  # type: ignore[attr-defined]
    trainer.micro_batch = 8
    return trainer


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _epochs(trainer: Trainer, *epochs: int) -> None:
    for epoch in epochs:
        trainer.train_epoch(epoch, lambda: False)
        trainer.progress.step_in_epoch = 0  # as the worker does at an epoch's end


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], names: list[str]) -> set[str]:
    return {n for n in names if not torch.equal(before[n], after[n])}


@pytest.mark.parametrize("model_name, labels", [
    ("timm:convnext_atto", ["stem", "stages.0", "stages.1", "stages.2", "stages.3"]),
    ("resnet18", ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]),
    ("tiny-cnn", ["0", "1", "2", "3"]),
])
def test_every_parameter_belongs_to_one_block_or_the_head(model_name: str, labels: list[str]) -> None:
    model = build_model(model_name, 3)
    blocks, head = model_blocks(model)
    assert [b.label for b in blocks] == labels
    names = [n for b in blocks for n in b.names] + head
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())


def test_head_only_epochs_change_nothing_else_then_the_top_blocks_train_at_decayed_rates() -> None:
    trainer = _trainer("tiny-cnn")  # batch norms in every block: their running statistics must hold too
    _, head = model_blocks(trainer.model)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-2, 1e-2, 5e-3]  # head, block 3, block 2
    start = _state(trainer.model)
    _epochs(trainer, 1)
    after_head_epoch = _state(trainer.model)
    encoder = [n for n in start if not n.startswith("8.")]  # every weight and buffer outside the head
    assert _changed(start, after_head_epoch, encoder) == set()
    assert _changed(start, after_head_epoch, head) == set(head)

    _epochs(trainer, 2)
    after = _state(trainer.model)
    lower = [n for n in after if n.split(".")[0] in ("0", "1")]
    assert _changed(after_head_epoch, after, lower) == set()
    for top in ("2", "3"):
        assert _changed(after_head_epoch, after, [n for n in after if n.split(".")[0] == top]), top
    said = [f for kind, f in trainer.events if kind == "trainable"]
    assert [s["blocks"] for s in said] == [[], ["3", "2"]]
    assert trainable_parts(said[0]) == ["head only: 387 of 163.9 k params", "2 block(s) unfreeze after epoch 1"]
    assert trainable_parts(said[1]) == ["head + 3, 2", "2/4 blocks · 152.8 k of 163.9 k params"]


def test_a_timm_encoder_s_frozen_blocks_stay_as_loaded_and_unfrozen_ones_learn() -> None:
    trainer = _trainer("timm:convnext_atto")
    blocks, _ = model_blocks(trainer.model)
    start = _state(trainer.model)
    _epochs(trainer, 1, 2)
    after = _state(trainer.model)
    for block in blocks[:-2]:
        assert _changed(start, after, list(block.names)) == set(), block.label
    for block in blocks[-2:]:
        assert _changed(start, after, list(block.names)), block.label


def test_the_probe_measures_the_unfrozen_phase_and_leaves_the_frozen_one_in_place() -> None:
    trainer = _trainer("tiny-cnn")
    trainer.enter_epoch(1)
    trainable_during: list[int] = []
    step = trainer._trial_step

    def counted(rows: np.ndarray, labels: np.ndarray) -> None:
        trainable_during.append(sum(p.numel() for p in trainer.model.parameters() if p.requires_grad))
        step(rows, labels)

    trainer._trial_step = counted  # type: ignore[method-assign]
    before = _state(trainer.model)
    assert trainer.probe_trial(4).fits
    widest = trainer.finetune.describe(trainer.finetune.widest)["parameters"]
    assert trainable_during == [widest] * 3
    head_only = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert head_only == trainer.finetune.describe(trainer.finetune.phase_of(1))["parameters"] < widest
    assert _changed(before, _state(trainer.model), list(before)) == set()


def test_a_resume_across_the_unfreeze_boundary_continues_exactly() -> None:
    straight = _trainer("tiny-cnn")
    _epochs(straight, 1, 2)

    first = _trainer("tiny-cnn")
    _epochs(first, 1)
    saved = copy.deepcopy({"model": first.model.state_dict(), "optimizer": first.optimizer.state_dict(),
                           "generator": first.generator.get_state(), "rng": torch.get_rng_state()})
    resumed = _trainer("tiny-cnn", seed=99)  # other initial weights: all of them must come from the checkpoint
    resumed.model.load_state_dict(saved["model"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    resumed.generator.set_state(saved["generator"])
    torch.set_rng_state(saved["rng"])
    resumed.progress.step = first.progress.step
    _epochs(resumed, 2)
    for name, value in _state(straight.model).items():
        torch.testing.assert_close(_state(resumed.model)[name], value, msg=name)


def test_the_registry_reads_the_recipe_and_refuses_what_cannot_work(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path / "ok", epochs=4, extra={"finetune": {"frozen_epochs": 2,
                                                                            "unfreeze_blocks": "all"}})
    experiment = registry.experiments["tiny"]
    assert experiment.finetune == Finetune(2, -1, 0.75)
    assert experiment.table()["finetune"] == {"frozen_epochs": 2, "unfreeze_blocks": "all", "lr_decay": 0.75}
    assert "finetune" not in tiny_workspace(tmp_path / "plain").experiments["tiny"].table()  # old hashes hold
    for n, (recipe, message) in enumerate((({"frozen_epochs": 4, "unfreeze_blocks": 1}, "leaves no epoch"),
                            ({"unfreeze_blocks": -2}, "must be a number of blocks"),
                            ({"unfreeze_blocks": "some"}, "must be a number of blocks"),
                            ({"lr_decay": 0.0}, "lr_decay = 0.0 must be positive"),
                            ({"lr_decay": 1.5}, "must be positive and <= 1"))):
        with pytest.raises(GalaxyError, match=message):
            tiny_workspace(tmp_path / str(n), epochs=4, extra={"finetune": recipe})
    warned = tiny_workspace(tmp_path / "typo", epochs=4, extra={"finetune": {"frozen_epoch": 1}})
    assert any("did you mean 'frozen_epochs'" in w for w in warned.warnings)


def _finetuned_encoder(root: Path, epochs: int, extra: dict) -> tuple[torch.nn.Module, dict]:
    encoder = random_encoder("convnext_atto", seed=5)
    saved(encoder, root / "weights" / "atto.safetensors")
    return encoder, {"model": "zoobot:convnext_atto", "weights": "weights/atto.safetensors", "pretrained": True,
                     "epochs": epochs, **extra}


def _kept_below_the_unfrozen_blocks(encoder: torch.nn.Module, run: RunInfo, unfrozen: tuple[str, ...]) -> None:
    trained = torch.load(run.dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    for name, value in encoder.state_dict().items():
        trains = name.startswith(unfrozen + ("head.",))
        assert torch.equal(trained[f"encoder.{name}"], value) != trains, name


@pytest.mark.slow
@needs_realdata
def test_a_zoobot_style_encoder_finetunes_on_the_real_sdss_galaxies(tmp_path: Path) -> None:
    shutil.copytree(REALDATA, tmp_path / "gz1", ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    encoder, experiment = _finetuned_encoder(tmp_path, 2, {
        "dataset": "gz1", "image_size": 32, "micro_batch": 16, "effective_batch": 16, "mistakes": 2,
        "finetune": {"frozen_epochs": 1, "unfreeze_blocks": 1, "lr_decay": 0.75}})
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
           "datasets": {"gz1": {"kind": "image-folder", "path": "gz1"}}, "experiments": {"gz1": experiment}}
    (tmp_path / "experiments.toml").write_text(tomli_w.dumps(raw))
    run = finished(launch(load_registry(tmp_path / "experiments.toml"), "gz1"))
    said = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "trainable"]
    assert [e["blocks"] for e in said] == [[], ["stages.3"]] and said[1]["of_blocks"] == 5
    _kept_below_the_unfrozen_blocks(encoder, run, ("stages.3.",))
    assert (run.dir / "results" / "metrics.json").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("cpu_ranks")
def test_ddp_ranks_stay_in_step_when_blocks_unfreeze(tmp_path: Path) -> None:
    """Two gloo ranks (CPU): DDP hooks only the parameters that train when it wraps the model, so it wraps
    again at the unfreeze; had it not, the blocks' gradients would not be all-reduced and the ranks' weights
    would part ways after epoch 2."""
    encoder, experiment = _finetuned_encoder(tmp_path, 2, {
        "devices": 2, "finetune": {"frozen_epochs": 1, "unfreeze_blocks": 2}})
    registry = tiny_workspace(tmp_path, epochs=2, count=200, extra=experiment)
    run = finished(launch(registry, "tiny"))
    weights = rank_lines(run.dir, "weights after epoch")
    assert set(weights) == {0, 1} and len(weights[0]) == 2 and weights[0] == weights[1]
    _kept_below_the_unfrozen_blocks(encoder, run, ("stages.3.", "stages.2."))
