"""The GPU paths, tested without a GPU through their seams. Each test says what it simulates: a CUDA
placement (torch.cuda's queries patched), out-of-memory errors injected at a chosen point of a step,
an enabled GradScaler on the CPU standing in for fp16 on CUDA. Tests that need a real GPU are skipped
with the reason; the same code runs under them on a GPU box."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from galaxy_tui.registry import Experiment
from galaxy_tui.train import device as device_module
from galaxy_tui.train.device import Placement, choose_placement, make_scaler, restore_rng_states, rng_states
from galaxy_tui.train.distributed import Collectives, Topology, backend_devices, backend_for
from galaxy_tui.train.feed import Prefetcher
from galaxy_tui.train.loop import RunFailed, Split, Trainer
from galaxy_tui.train.memory import cpu_copy
from galaxy_tui.train.models import build_model
from galaxy_tui.train.oom import is_out_of_memory
from galaxy_tui.train.probe_search import TrialOutcome, search_micro_batch
from galaxy_tui.train.tasks import ClassificationTask

CPU_FP32 = Placement(torch.device("cpu"), None, False, False)
# fp16 on CUDA is the one placement with an enabled GradScaler; the CPU scaler runs the same code
CPU_WITH_SCALER = Placement(torch.device("cpu"), None, True, False)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """Simulates a CUDA machine for choose_placement: torch.cuda reports a device of a chosen compute
    capability; is_bf16_supported() says True as it does on Turing (it counts emulation). The global
    backend switches it sets are put back afterwards."""
    gpu = {"capability": (8, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: gpu["capability"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    yield gpu
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


# ------------------------------------------------------------------ precision, TF32, cuDNN

def test_auto_precision_is_fp16_with_a_scaler_on_turing_and_bf16_on_ampere(fake_cuda: dict) -> None:
    fake_cuda["capability"] = (7, 5)  # T4 / RTX 20xx: bf16 only emulated
    turing = choose_placement("auto", False, True)
    assert turing.device.type == "cuda" and turing.precision == "fp16" and turing.use_scaler
    fake_cuda["capability"] = (8, 0)  # A100
    ampere = choose_placement("auto", False, True)
    assert ampere.precision == "bf16" and not ampere.use_scaler


def test_tf32_switch_sets_matmul_and_convolutions_and_cudnn_benchmark_is_on(fake_cuda: dict) -> None:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    choose_placement("fp32", False, tf32=False)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.benchmark
    choose_placement("fp32", False, tf32=True)
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


# ------------------------------------------------------------------ collectives

def test_the_process_group_serves_every_collective_the_worker_makes(fake_cuda: dict) -> None:
    """On a (simulated) CUDA box the worker's agreements are CPU tensors: NCCL alone cannot carry them.
    Every collective is checked against the backend's devices, also in a one-process run."""
    placement = choose_placement("auto", False, True)
    backend = backend_for(placement.device.type == "cuda")
    assert backend_devices(backend) == {"cpu": "gloo", "cuda": "nccl"}
    group = Collectives(Topology(0, 1, 0), backend)
    assert group.min_int(7) == 7 and group.max_ints([1, 2]) == [1, 2] and group.any(True)
    assert group.from_rank0([0.5]) == [0.5] and group.mean([2.0]) == [2.0]
    group.barrier()
    nccl_only = Collectives(Topology(0, 1, 0), "nccl")  # what the worker used to ask for
    with pytest.raises(RuntimeError, match="serves only \\['cuda'\\]"):
        nccl_only.min_int(7)


# ------------------------------------------------------------------ a trainer on small data

def _trainer(monkeypatch: pytest.MonkeyPatch, inject: str = "", placement: Placement = CPU_FP32,
             **experiment: object) -> Trainer:
    monkeypatch.setenv("GALAXY_TUI_INJECT_OOM", inject)
    images = np.random.default_rng(0).integers(0, 255, (96, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0] * 60 + [1] * 24 + [2] * 12)  # unbalanced, so class weights differ
    settings = {"effective_batch": 32, "augment": False, "grad_clip": 0.0, "scheduler": "none", "sampler": "none",
                "label_smoothing": 0.0, **experiment}
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16 * 3, 3))
    events: list[tuple[str, dict]] = []
    experiment = Experiment(name="t", dataset="d", **settings)  # type: ignore[arg-type]
    trainer = Trainer(experiment, model, placement, images, Split(np.arange(96), labels),
                      ClassificationTask(3, experiment, labels), lambda kind, **f: events.append((kind, f)), 3)
    trainer.events = events  # type: ignore[attr-defined]
    trainer.micro_batch = 16
    return trainer


def _same_weights(a: Trainer, b: Trainer) -> bool:
    return all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.model.parameters(), b.model.parameters()))


@pytest.mark.parametrize("inject", [
    "steps=2 below=8 phase=forward",
    "steps=2 below=8 phase=backward",
    "steps=2 below=8 phase=clip",           # after unscale_: the scaler must forget it
    "steps=2 below=8 phase=forward kind=cublas",  # cuBLAS's RuntimeError means out of memory too
])
def test_an_oom_anywhere_before_the_update_resplits_the_same_batch(monkeypatch: pytest.MonkeyPatch,
                                                                   inject: str) -> None:
    """Simulates OOM spikes (injected) at step 2 with an enabled GradScaler and gradient clipping."""
    clean = _trainer(monkeypatch, "", CPU_WITH_SCALER, grad_clip=1.0)
    clean.train_epoch(1, lambda: False)
    spiked = _trainer(monkeypatch, inject, CPU_WITH_SCALER, grad_clip=1.0)
    spiked.train_epoch(1, lambda: False)
    assert [f["step"] for kind, f in spiked.events if kind == "oom"] == [2]
    assert spiked.micro_batch == 8 and spiked.progress.step == clean.progress.step == 3
    assert _same_weights(clean, spiked)


def test_a_resplit_keeps_the_class_weighted_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Class weights: the re-split batch's loss (and so its update) equals the whole batch's."""
    clean = _trainer(monkeypatch, "", sampler="class-weights")
    clean_loss, _ = clean.train_epoch(1, lambda: False)
    spiked = _trainer(monkeypatch, "steps=1,2,3 below=4", sampler="class-weights")
    spiked_loss, _ = spiked.train_epoch(1, lambda: False)
    assert spiked.micro_batch == 4
    assert spiked_loss == pytest.approx(clean_loss, rel=1e-5)
    assert _same_weights(clean, spiked)


def test_an_oom_inside_the_optimizer_update_ends_the_attempt_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(monkeypatch, "steps=2 phase=step below=0")
    with pytest.raises(RunFailed, match="inside the optimizer update at step 2.*Resume continues"):
        trainer.train_epoch(1, lambda: False)


def test_a_probe_oom_inside_scaler_step_leaves_the_scaler_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates the probe's trial running out of memory inside scaler.step (so update() never ran)."""
    trainer = _trainer(monkeypatch, "steps=-1 phase=step below=4", CPU_WITH_SCALER, grad_clip=1.0)
    assert not trainer.probe_trial(8).fits
    assert trainer.probe_trial(4).fits
    loss, _ = trainer.train_epoch(1, lambda: False)  # unscale_/step would refuse a scaler left mid-step
    assert np.isfinite(loss) and trainer.progress.step == 3


def test_the_probe_restores_every_random_state_it_used(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(monkeypatch, augment=True)
    generator, global_rng = trainer.generator.get_state(), torch.get_rng_state()
    trainer.probe_trial(8)
    assert torch.equal(trainer.generator.get_state(), generator)  # the augmentation draws of step 1
    assert torch.equal(torch.get_rng_state(), global_rng)


def test_probe_copies_are_detached_cpu_copies() -> None:
    weights = torch.ones(3)
    copy = cpu_copy({"w": weights, "state": {0: {"exp_avg": weights}}, "groups": [{"lr": 0.1}]})
    weights += 1
    assert copy["w"].device.type == "cpu" and torch.equal(copy["w"], torch.ones(3))  # type: ignore[index]
    assert torch.equal(copy["state"][0]["exp_avg"], torch.ones(3))  # type: ignore[index]


def test_evaluation_batch_follows_the_probe_and_shrinks_on_oom(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates an OOM during validation at batches larger than 8 (twice the micro-batch of 16 is 32)."""
    plain = _trainer(monkeypatch)
    plain.train_epoch(1, lambda: False)
    _, expected = plain.predict(Split(np.arange(96), plain.train.labels))
    squeezed = _trainer(monkeypatch, "phase=eval below=8")
    squeezed.train_epoch(1, lambda: False)
    loss, probabilities = squeezed.predict(Split(np.arange(96), squeezed.train.labels))
    assert np.allclose(probabilities, expected, atol=1e-6) and np.isfinite(loss)
    assert squeezed.eval_batch == 8
    assert any(kind == "warning" and "continuing with batches of 8" in f["message"] for kind, f in squeezed.events)
    assert all(p.grad is None for p in squeezed.model.parameters())  # gradients freed before predicting


def test_inputs_follow_the_memory_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(monkeypatch)
    rows = np.arange(4)
    assert trainer._inputs(rows, training=False).is_contiguous()
    trainer.placement = Placement(torch.device("cpu"), None, False, True)
    nhwc = trainer._inputs(rows, training=False)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nhwc.is_contiguous()


def test_out_of_memory_is_recognised_in_its_several_spellings() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# ------------------------------------------------------------------ the probe's budget

def test_the_budget_is_read_after_the_first_trial() -> None:
    """Simulates a GPU where the first kernels take 0.5 GiB for library handles: a budget read before
    the first trial would be 0.5 GiB too generous."""
    gib = 1 << 30
    free = {"bytes": 10 * gib}

    def trial(size: int) -> TrialOutcome:
        free["bytes"] = 9.5 * gib  # cuDNN/cuBLAS handles now exist
        return TrialOutcome(True, int(gib + size * 50e6))

    reads: list[int] = []

    def read_budget() -> int:
        reads.append(int(free["bytes"]))
        return int(free["bytes"])

    result = search_micro_batch(trial, read_budget, 4096)
    assert reads == [int(9.5 * gib)]
    assert all(t.budget_bytes == int(9.5 * gib) for t in result.trials)
    assert gib + result.micro_batch * 50e6 <= 9.5 * gib


# ------------------------------------------------------------------ checkpoint state

def test_checkpoints_carry_the_cuda_random_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates torch.cuda's RNG calls: a CUDA placement saves the device's generator and restores it."""
    restored: list[torch.Tensor] = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: torch.tensor([7], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device=None: restored.append(state))
    cuda = torch.device("cuda", 0)
    states = rng_states(cuda)
    assert torch.equal(states["cuda_rng"], torch.tensor([7], dtype=torch.uint8))  # type: ignore[arg-type]
    restore_rng_states(states, cuda)
    assert restored and torch.equal(restored[0], torch.tensor([7], dtype=torch.uint8))
    assert rng_states(torch.device("cpu"))["cuda_rng"] is None


def test_an_fp16_resume_accepts_a_checkpoint_whose_scaler_was_disabled() -> None:
    empty = make_scaler(CPU_FP32).state_dict()  # saved on the CPU or in bf16: {}
    assert empty == {}
    scaler = make_scaler(CPU_WITH_SCALER, empty)  # an enabled scaler refuses {} with load_state_dict
    assert scaler.is_enabled() and scaler.get_scale() == 65536.0
    scaler.scale(torch.ones(()))
    scaler.update(1024.0)
    assert make_scaler(CPU_WITH_SCALER, scaler.state_dict()).get_scale() == 1024.0


def test_bf16_detection_does_not_count_emulation(fake_cuda: dict) -> None:
    fake_cuda["capability"] = (7, 5)
    assert not device_module.native_bf16(torch.device("cuda", 0))


# ------------------------------------------------------------------ only a GPU can confirm these

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; the seams above stand in")


@needs_cuda
def test_a_training_step_makes_no_device_synchronisation_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    placement = choose_placement("fp32", False, True)
    images = np.random.default_rng(0).integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    experiment = Experiment(name="t", dataset="d", effective_batch=32, scheduler="none", sampler="none")
    trainer = Trainer(experiment, build_model("tiny-cnn", 3).to(placement.device), placement, images,
                      Split(np.arange(64), np.arange(64) % 3), ClassificationTask(3, experiment, np.arange(64) % 3),
                      lambda *a, **k: None, 2)
    trainer.micro_batch = 16
    trainer.optimizer_step(np.arange(32), np.arange(32) % 3)  # warm-up: first allocations may sync
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.optimizer_step(np.arange(32, 64), np.arange(32, 64) % 3)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_the_batch_split_is_arithmetic_that_adds_up() -> None:
    from galaxy_tui.run_model import batch_split
    assert batch_split(128, 2, 256) == "128 x 2 = 256"
    assert batch_split(229, 2, 256) == "229 + 27 = 256"   # the loop runs 229 then the remaining 27
    assert batch_split(114, 3, 256) == "114 x 2 + 28 = 256"
    assert batch_split(8, 2, 32, world=2) == "(8 x 2) x 2 ranks = 32"


@pytest.mark.parametrize("new_epochs", [4, 1])
def test_resuming_with_another_epoch_count_continues_the_schedule_at_the_same_step(
        monkeypatch: pytest.MonkeyPatch, new_epochs: int) -> None:
    """2 epochs of 3 steps saved after epoch 2 (step 6, the schedule's end); resumed for 4 epochs the
    learning rate must climb back onto the longer schedule; resumed for 1 it stays at the end."""
    old = _trainer(monkeypatch, scheduler="cosine", epochs=2, lr=1e-2)
    for _ in range(6):
        old.optimizer_step(np.arange(32), old.train.labels[:32])
    saved = old.scheduler.state_dict()
    resumed = _trainer(monkeypatch, scheduler="cosine", epochs=new_epochs, lr=1e-2)
    resumed.restore_scheduler(saved)
    rate = resumed.optimizer.param_groups[0]["lr"]
    if new_epochs == 4:
        assert rate > 0.1 * 1e-2  # step 6 of 12: well inside the schedule, not its ~0 end
        resumed.optimizer_step(np.arange(32), resumed.train.labels[:32])
        assert resumed.optimizer.param_groups[0]["lr"] > 0.1 * 1e-2
    else:
        assert rate < 1e-4  # the end of the shorter schedule


# ------------------------------------------------------------------ feeding the device

def test_training_with_the_prefetcher_is_training_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feeder thread only reads bytes: same batches, same augmentation draws, same weights."""
    fed = _trainer(monkeypatch, augment=True)
    fed.prefetch = True  # what a GPU run does; on the CPU the trainer reads inline
    fed.train_epoch(1, lambda: False)
    plain = _trainer(monkeypatch, augment=True)
    plain.model.train()
    for positions in plain.batches_of_epoch(1):
        plain.optimizer_step(plain.train.indices[positions], plain.train.labels[positions])  # reads inline
    assert torch.equal(fed.generator.get_state(), plain.generator.get_state())
    assert _same_weights(fed, plain)


def test_the_feeders_host_buffers_exist_before_the_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh pages cost the first steps a wait: warmed buffers are faulted in before training, and an epoch
    reads only into them (no batch buffer allocated while steps wait). On CUDA the trainer warms pinned
    blocks instead (torch's caching host allocator keeps them), which needs a GPU to observe."""
    images = np.random.default_rng(0).integers(0, 255, (96, 16, 16, 3), dtype=np.uint8)
    steps = [np.sort(np.random.default_rng(i).choice(96, 32, replace=False)) for i in range(6)]
    ring: list[torch.Tensor] = []
    Prefetcher.warm(images, 32, pin=False, ring=ring)
    warmed = [buffer.data_ptr() for buffer in ring]
    assert len(warmed) == 4 and all(buffer.shape == (32, 16, 16, 3) for buffer in ring)
    allocations: list[tuple] = []
    real_empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, **k: allocations.append(a) or real_empty(*a, **k))
    feeder = Prefetcher(images, steps, pin=False, ring=ring)
    for rows, batch in zip(steps, feeder):
        assert torch.equal(batch, torch.from_numpy(images[rows]).permute(0, 3, 1, 2))
    feeder.close()
    assert [buffer.data_ptr() for buffer in ring] == warmed and not allocations


def test_each_step_reads_its_batch_in_file_order(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(monkeypatch, sampler="weighted")
    for positions in trainer.batches_of_epoch(1):
        rows = trainer.train.indices[positions]
        assert np.all(np.diff(rows) >= 0)


def test_a_training_step_reads_no_figure_back_from_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts the Tensor.item()/float()/tolist()/bool() calls galaxy-tui's own code makes during optimizer
    steps (each is a device sync on a GPU; torch's optimizer reading its CPU step counter is not): the loss
    stays on the device until the few-times-a-second report."""
    import sys
    trainer = _trainer(monkeypatch, augment=True, grad_clip=1.0, sampler="class-weights", scheduler="cosine")
    calls: list[str] = []

    def counting(name: str, real):  # noqa: ANN001, ANN202
        def read(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            caller = sys._getframe(1).f_code.co_filename
            if "galaxy_tui" in caller:
                calls.append(f"{name} in {caller}:{sys._getframe(1).f_lineno}")
            return real(self, *args, **kwargs)
        return read

    for name in ("item", "__float__", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    trainer.model.train()
    for positions in trainer.batches_of_epoch(1)[:2]:
        trainer.optimizer_step(trainer.train.indices[positions], trainer.train.labels[positions])
    assert calls == [], calls


@pytest.mark.parametrize(("scheduler", "peak_step"), [("cosine", 2), ("onecycle", 5)])
def test_onecycle_climbs_for_longer_than_cosine(monkeypatch: pytest.MonkeyPatch, scheduler: str,
                                                 peak_step: int) -> None:
    """6 epochs of 3 steps: the rate peaks near 15% (cosine) or 30% (onecycle) of the 18 steps, then falls to ~0."""
    trainer = _trainer(monkeypatch, scheduler=scheduler, epochs=6, lr=1e-2)
    rates = []
    for _ in range(18):
        rates.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer_step(np.arange(32), trainer.train.labels[:32])
    assert int(np.argmax(rates)) == peak_step and max(rates) == pytest.approx(1e-2, rel=0.05)
    assert rates[0] < 1e-3 and rates[-1] < 1e-3


@pytest.mark.parametrize("stop_after", [1, 3])
def test_an_epoch_finished_by_a_resume_reports_the_loss_of_all_its_steps(monkeypatch: pytest.MonkeyPatch,
                                                                        stop_after: int) -> None:
    """Stopped after 1 (or all 3) of an epoch's steps, checkpointed, resumed: the epoch's train loss is the mean
    over its 3 steps across both attempts (it read n/a when the resume had no step of it left)."""
    first = _trainer(monkeypatch, epochs=2, lr=1e-2)
    calls = iter(range(1, 99))
    loss_one, stopped = first.train_epoch(1, lambda: next(calls) >= stop_after)
    assert stopped and first.progress.step_in_epoch == stop_after
    carried = first.epoch_loss_so_far()
    assert carried[1] == stop_after and carried[0] == pytest.approx(loss_one * stop_after)
    resumed = _trainer(monkeypatch, epochs=2, lr=1e-2)
    resumed.model.load_state_dict(first.model.state_dict())
    resumed.progress.step_in_epoch, (resumed.progress.carried_loss, resumed.progress.carried_steps) = \
        stop_after, carried
    mean, stopped = resumed.train_epoch(1, lambda: False)
    total, steps = resumed.epoch_loss_so_far()
    assert not stopped and steps == 3 and np.isfinite(mean) and mean == pytest.approx(total / 3)
    if stop_after == 3:
        assert mean == pytest.approx(loss_one)  # nothing left to train: the first attempt's steps alone
