"""Training internals without a GPU: models, the probe search on simulated memory, OOM-spike re-splitting,
atomic checkpoints under SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from galaxy_tui.data.synthetic import SYNTHETIC_TREE
from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import MODEL_NAMES
from galaxy_tui.registry import Experiment
from galaxy_tui.train.checkpoint import load_checkpoint, save_checkpoint
from galaxy_tui.train.device import choose_placement
from galaxy_tui.train.loop import RunFailed, Split, Trainer
from galaxy_tui.train.models import build_model
from galaxy_tui.train.probe_search import ProbeError, TrialOutcome, search_micro_batch
from galaxy_tui.train.tasks import ClassificationTask, Task, VoteFractionTask
from galaxy_tui.train.views import dihedral_views

GIB = 1 << 30


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("name", list(MODEL_NAMES))
def test_every_model_builds_with_a_head_for_the_classes(name: str) -> None:
    model = build_model(name, 7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


def test_unknown_model_and_missing_pretrained_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GalaxyError, match="unknown model 'vgg11'; valid models: tiny-cnn"):
        build_model("vgg11", 3)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(GalaxyError, match="not in the local torch cache.*nothing is downloaded"):
        build_model("resnet18", 3, pretrained=True)


# ------------------------------------------------------------------ the probe, on simulated GPU memory

def memory_model(kind: str, capacity: int, seed: int = 0):  # noqa: ANN201
    """Simulates a GPU of `capacity` bytes: raises torch.cuda.OutOfMemoryError when a step would not fit."""
    rnd = random.Random(seed)

    def peak(b: int) -> int:
        value = 1.2 * GIB + 3e6 * b
        if kind == "convex":
            value += 2000 * b * b
        if kind == "noisy":
            value *= 1 + rnd.uniform(-0.03, 0.03)
        if kind == "step" and b > 300:   # e.g. a different conv algorithm past some size
            value += 0.5 * GIB
        return int(value)

    def trial(b: int) -> TrialOutcome:
        warm_up = peak(b) * (1.1 if kind == "spike" else 1.0)  # the warm-up step needs more than later steps
        if warm_up > capacity or peak(b) > capacity:
            raise torch.cuda.OutOfMemoryError(f"simulated: {b} needs more than {capacity}")
        return TrialOutcome(True, peak(b), 0.01)

    return trial, peak


@pytest.mark.parametrize("kind", ["affine", "convex", "noisy", "spike", "step"])
@pytest.mark.parametrize("capacity_gib", [1.4, 1.5, 2, 3, 5, 8, 12, 16, 24, 40, 80])
def test_probe_finds_a_size_that_ran_in_at_most_six_trials(kind: str, capacity_gib: float) -> None:
    capacity = int(capacity_gib * GIB)
    budget = int(capacity * 0.9)
    trial, peak = memory_model(kind, capacity)
    spike = 1.1 if kind == "spike" else 1.0
    true_max = max((b for b in range(1, 4097) if peak(b) <= budget and peak(b) * spike <= capacity), default=0)
    seen: list = []
    result = search_micro_batch(trial, budget, 4096, seen.append, oom_errors=(torch.cuda.OutOfMemoryError,))
    assert len(result.trials) <= 6
    chosen = [t for t in result.trials if t.micro_batch == result.micro_batch]
    assert chosen and all(t.fits and t.peak_bytes <= budget for t in chosen)  # never an untested size
    assert seen == result.trials
    if kind in ("affine", "convex"):
        assert result.micro_batch >= 0.9 * true_max, (result.micro_batch, true_max)
    assert result.micro_batch <= true_max or kind == "noisy"


def test_probe_gives_up_when_one_sample_does_not_fit() -> None:
    trial, _ = memory_model("affine", int(1.0 * GIB))
    with pytest.raises(ProbeError):
        search_micro_batch(trial, int(0.9 * GIB), 4096, oom_errors=(torch.cuda.OutOfMemoryError,))


def test_probe_stops_at_the_effective_batch() -> None:
    trial, _ = memory_model("affine", 80 * GIB)
    result = search_micro_batch(trial, 72 * GIB, 64, oom_errors=(torch.cuda.OutOfMemoryError,))
    assert result.micro_batch == 64 and len(result.trials) == 3


# ------------------------------------------------------------------ OOM spikes mid-run

def _task(name: str, experiment: Experiment, labels: np.ndarray) -> tuple[Task, np.ndarray]:
    """The task and its per-galaxy targets: 3 classes, or the demo's decision tree (random fractions that sum
    to 1 per question)."""
    if name == "classification":
        return ClassificationTask(3, experiment, labels), labels
    rng = np.random.default_rng(1)
    fractions = np.concatenate([rng.dirichlet(np.ones(len(q.answers)), len(labels)) for q in SYNTHETIC_TREE.questions],
                               axis=1)
    task = VoteFractionTask(SYNTHETIC_TREE, "mse")
    return task, task.target_table(fractions, None)


def _trainer(tmp_path: Path, model: nn.Module, inject: str, monkeypatch: pytest.MonkeyPatch,
             task: str = "classification") -> Trainer:
    monkeypatch.setenv("GALAXY_TUI_INJECT_OOM", inject)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (96, 16, 16, 3), dtype=np.uint8)
    experiment = Experiment(name="t", dataset="d", effective_batch=32, augment=False, grad_clip=0.0,
                            scheduler="none", sampler="none", label_smoothing=0.0)
    judged, targets = _task(task, experiment, np.arange(96) % 3)
    placement = choose_placement("fp32", False, False)
    events: list[tuple[str, dict]] = []
    trainer = Trainer(experiment, model, placement, images, Split(np.arange(96), targets), judged,
                      lambda kind, **f: events.append((kind, f)), steps_per_epoch=3)
    trainer.events = events  # type: ignore[attr-defined]
    trainer.micro_batch = 16
    return trainer


def _linear(outputs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16 * 3, outputs))


@pytest.mark.parametrize("task", ["classification", "vote-fractions"])
def test_oom_spike_resplits_the_same_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    """Simulates a CUDA OOM spike (injected torch.cuda.OutOfMemoryError) at optimizer step 2, for either task:
    the re-split batch gives the same update as the unsplit one."""
    outputs = 3 if task == "classification" else SYNTHETIC_TREE.outputs
    clean = _trainer(tmp_path, _linear(outputs), "", monkeypatch, task)
    clean.train_epoch(1, lambda: False)
    spiked = _trainer(tmp_path, _linear(outputs), "steps=2 below=8", monkeypatch, task)
    spiked.train_epoch(1, lambda: False)
    ooms = [f for kind, f in spiked.events if kind == "oom"]
    assert ooms == [{"step": 2, "micro_batch_before": 16, "micro_batch_after": 8, "accumulation": 4}]
    assert spiked.progress.step == clean.progress.step == 3
    assert spiked.micro_batch == 8 and spiked.per_rank_batch == 32
    for a, b in zip(clean.model.parameters(), spiked.model.parameters()):
        assert torch.allclose(a, b, atol=1e-5)  # same batches, same order, same update


def test_tta_predictions_are_the_mean_over_the_eight_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(tmp_path, _linear(), "", monkeypatch)
    split = Split(np.arange(24), np.arange(24) % 3)
    x = trainer._inputs(split.indices, training=False)
    views = dihedral_views(x)
    assert len({v.flatten().tolist().__str__() for v in views}) == 8  # a random image: 8 different views
    with torch.no_grad():
        expected = torch.stack([torch.softmax(trainer.model(v), 1) for v in views]).mean(0).numpy()
    _, plain = trainer.predict(split)
    _, averaged = trainer.predict(split, tta=True)
    np.testing.assert_allclose(averaged, expected, atol=1e-5)
    assert not np.allclose(averaged, plain, atol=1e-3)


def test_oom_at_micro_batch_one_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(tmp_path, _linear(), "steps=1 below=0", monkeypatch)
    with pytest.raises(RunFailed, match="out of memory at step 1 even with micro-batch 1"):
        trainer.train_epoch(1, lambda: False)


def test_probe_trial_runs_for_real_on_cpu_and_restores_the_weights(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(tmp_path, _linear(), "", monkeypatch)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    outcome = trainer.probe_trial(8)
    assert outcome.fits and outcome.peak_bytes > 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert not trainer.optimizer.state  # the optimizer's state was restored (to empty) too


# ------------------------------------------------------------------ checkpoints

def _save_forever(path: str, start: int) -> None:
    n = start
    while True:
        n += 1
        save_checkpoint(Path(path), {"weights": torch.full((400_000,), float(n)), "n": n, "config_hash": "h"})
        Path(path + ".ready").touch()


def test_sigkill_while_writing_never_leaves_a_torn_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    context = multiprocessing.get_context("spawn")  # fork after torch's threads started can deadlock
    seen = set()
    for attempt in range(4):
        Path(f"{path}.ready").unlink(missing_ok=True)
        writer = context.Process(target=_save_forever, args=(str(path), attempt * 100_000))
        writer.start()
        while not Path(f"{path}.ready").exists():
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 0.3))  # land anywhere inside the write loop
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        state = load_checkpoint(path, "h")
        assert torch.all(state["weights"] == state["n"])  # whole, not torn
        assert state["n"] > attempt * 100_000  # written by this attempt's writer: the file was replaced
        seen.add(state["n"])
        assert len(list(tmp_path.glob(".last.pt.*.tmp"))) <= 1  # a killed write's leftover is swept next time
    assert len(seen) == 4


def test_checkpoint_from_another_config_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", {"config_hash": "aaa", "model": {}})
    with pytest.raises(GalaxyError, match="different configuration"):
        load_checkpoint(tmp_path / "c.pt", "bbb")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(GalaxyError, match="cannot be read"):
        load_checkpoint(tmp_path / "bad.pt", "aaa")


@pytest.mark.parametrize("precision, optimizer, scheduler, sampler", [
    ("bf16", "sgd", "plateau", "class-weights"), ("auto", "adamw", "cosine", "weighted"),
    ("fp32", "adamw", "none", "none")])
def test_each_switch_trains_on_cpu(precision: str, optimizer: str, scheduler: str, sampler: str) -> None:
    experiment = Experiment(name="t", dataset="d", effective_batch=32, precision=precision, optimizer=optimizer,
                            scheduler=scheduler, sampler=sampler, epochs=2)
    placement = choose_placement(precision, True, True)
    if placement.device.type == "cpu":
        assert placement.precision == ("bf16" if precision == "bf16" else "fp32")  # CPU: bf16 only when asked
    else:  # a GPU box: auto is bf16 or fp16 (see test_gpu_seams for the choice on simulated devices)
        assert placement.precision == {"bf16": "bf16", "fp32": "fp32"}.get(precision, placement.precision)
    images = np.random.default_rng(0).integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(64) % 3
    trainer = Trainer(experiment, build_model("tiny-cnn", 3).to(memory_format=torch.channels_last), placement,
                      images, Split(np.arange(64), labels), ClassificationTask(3, experiment, labels),
                      lambda *a, **k: None, 2)
    trainer.micro_batch = 16
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, stopped = trainer.train_epoch(1, lambda: False)
    assert np.isfinite(loss) and not stopped and trainer.progress.step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


class _Payload:
    """Stands in for a malicious pickle: unpickling it would run code."""

    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("true",))


def test_a_pickle_with_code_is_refused_without_suggesting_unsafe_loading(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"config_hash": "h", "payload": _Payload()}, path)
    with pytest.raises(GalaxyError) as caught:
        load_checkpoint(path, "h")
    message = str(caught.value)
    assert "is not a checkpoint this program wrote" in message and "weights_only" not in message


@pytest.mark.parametrize("error, words", [
    (OSError(28, "No space left on device"), "no space left on"),
    (PermissionError(13, "Permission denied"), "cannot write"),
])
def test_a_checkpoint_that_cannot_be_written_says_why_and_keeps_the_last_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, words: str) -> None:
    """Simulates a full disk / an unwritable folder at the moment torch writes the checkpoint."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"config_hash": "h", "n": 1})

    def failing_save(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(GalaxyError, match=words) as caught:
        save_checkpoint(path, {"config_hash": "h", "n": 2})
    assert "previous checkpoint is kept" in str(caught.value)
    monkeypatch.undo()
    assert load_checkpoint(path, "h")["n"] == 1
    assert not list(tmp_path.glob(".last.pt.*.tmp"))
