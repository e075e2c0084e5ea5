"""Run lifecycle with real processes: detached worker + supervisor, stop, kill -9, lost, resume, skip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import find_runs, get_run, launch, run_info, stop_run
from workspace_fixture import rank_lines, tiny_workspace, wait_final, wait_for

pytestmark = pytest.mark.slow


def types(run_dir: Path) -> list[str]:
    return [e["type"] for e in read_events(run_dir / "events.jsonl")]


def test_a_run_trains_evaluates_and_writes_every_artefact(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()
    kinds = types(run.dir)
    for kind in ("started", "prepare", "data", "probe_done", "step", "epoch", "checkpoint", "eval", "finished",
                 "exited"):
        assert kind in kinds
    results = run.dir / "results"
    metrics = json.loads((results / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"elliptical", "spiral", "edge_on"}
    predictions = pd.read_csv(results / "predictions.csv")
    split = pd.read_csv(run.dir / "split.csv")
    assert len(predictions) == sum(metrics["per_class"][c]["support"] for c in metrics["per_class"])
    assert metrics["accuracy"] == pytest.approx((predictions["true"] == predictions["predicted"]).mean(), abs=1e-4)
    calibration = metrics["calibration"]  # temperature fitted on the validation galaxies, applied to test
    assert calibration["temperature"] > 0 and calibration["val_ece_after"] <= calibration["val_ece_before"]
    assert {"pcal_elliptical", "pcal_spiral", "pcal_edge_on", "calibrated_confidence"} <= set(predictions.columns)
    val_predictions = pd.read_csv(results / "val_predictions.csv")
    assert set(val_predictions["id"].astype(str)) == set(split["id"][split["split"] == "val"].astype(str))
    confusion = pd.read_csv(results / "confusion.csv", index_col=0)
    assert confusion.to_numpy().sum() == len(predictions)
    mistakes = pd.read_csv(results / "mistakes" / "mistakes.csv")
    assert all((results / "mistakes" / f).exists() for f in mistakes["file"])
    assert (run.dir / "checkpoints" / "best.pt").exists() and (run.dir / "checkpoints" / "last.pt").exists()
    assert set(split["split"]) == {"train", "val", "test"}
    assert run.epoch == 2 and run.best_metric is not None
    from galaxy_tui.telemetry import NvmlTelemetry
    if NvmlTelemetry().available:  # a GPU box: NVML measures the training's energy
        assert metrics["energy_j"] is None or metrics["energy_j"] >= 0
    else:  # here: no NVIDIA GPU, said in words
        assert metrics["energy_j"] is None and metrics["energy_note"].startswith("no NVIDIA GPU")
    manifest = json.loads((run.dir / "manifest.json").read_text())["attempts"][-1]
    assert manifest["seed"] == 0 and manifest["torch"] and manifest["galaxy_tui"] == "0.1.0"
    assert any(p.startswith("torch==") for p in manifest["packages"])
    assert len(manifest["dataset"]["catalogue_sha256"]) == 64 and manifest["dataset"]["rows"] == len(split)
    shown = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "show", run.id],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=True).stdout
    assert "seed 0 · attempt 1" in shown and manifest["dataset"]["catalogue_sha256"][:16] in shown


def test_stop_checkpoints_then_resume_continues(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=40)
    run = launch(registry, "tiny")
    wait_for(lambda: "epoch" in types(run.dir))
    stop_run(registry, run.id)
    stopped = wait_final(run)
    assert stopped.state == "stopped"
    events = read_events(run.dir / "events.jsonl")
    stop_event = next(e for e in events if e["type"] == "stopped")
    assert next(e for e in events if e["type"] == "exited")["code"] == 0
    # resume with fewer epochs so the test ends soon; epochs may change without invalidating the checkpoint
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=stop_event["epoch"] + 1))
    resumed = launch(load_registry(registry.path), "tiny", "resume")
    assert resumed.id == run.id and resumed.attempt == 2
    final = wait_final(resumed)
    assert final.state == "finished", (run.dir / "worker.log").read_text()
    events = read_events(run.dir / "events.jsonl")
    resumed_event = next(e for e in events if e["type"] == "resumed")
    assert resumed_event["step"] == stop_event["step"]
    later_steps = [e["step"] for e in events[events.index(resumed_event):] if e["type"] == "step"]
    assert later_steps and min(later_steps) == stop_event["step"] + 1


def test_kill_9_is_killed_and_resume_continues_from_last_checkpoint(tmp_path: Path) -> None:
    # checkpoint_minutes this small writes last.pt after every step, so the kill lands mid-epoch
    registry = tiny_workspace(tmp_path, epochs=40, extra={"checkpoint_minutes": 0.0001})
    run = launch(registry, "tiny")
    wait_for(lambda: "epoch" in types(run.dir) and types(run.dir).count("checkpoint") >= 12)
    worker = read_json(run.dir / "supervisor.json")["worker_pid"]
    os.kill(worker, signal.SIGKILL)
    killed = wait_final(run)
    assert killed.state == "killed" and "SIGKILL" in killed.message
    exited = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "exited"][-1]
    assert exited["signal"] == "SIGKILL"
    last = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "checkpoint"][-1]
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=last["epoch"] + 1))
    resumed = wait_final(launch(load_registry(registry.path), "tiny", "resume"))
    assert resumed.state == "finished"
    events = read_events(run.dir / "events.jsonl")
    resumed_event = next(e for e in events if e["type"] == "resumed")
    # the kill may land between a checkpoint's rename and its event: resume is from that one or the next
    assert resumed_event["step"] in (last["step"], last["step"] + 1)
    after = [e["step"] for e in events[events.index(resumed_event):] if e["type"] == "step"]
    assert after[0] == resumed_event["step"] + 1  # no step repeated, none skipped


def test_worker_and_supervisor_both_gone_is_lost(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=40)
    run = launch(registry, "tiny")
    wait_for(lambda: "step" in types(run.dir))
    pids = read_json(run.dir / "supervisor.json")
    os.kill(pids["supervisor_pid"], signal.SIGKILL)
    os.kill(pids["worker_pid"], signal.SIGKILL)
    lost = wait_for(lambda: (info := run_info(run.dir)).state == "lost" and info, timeout=20)
    assert lost.state == "lost" and not lost.is_live
    assert read_json(run.dir / "status.json")["state"] == "training"  # lost is derived, never written
    listing = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "runs"],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=True)
    assert "lost" in listing.stdout


def test_a_supervisor_that_cannot_start_fails_the_launch_with_its_reason(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a Python that lacks the package (an install for another interpreter): the launch must say
    so at once rather than leave a run `queued` that turns `lost` with no reason."""
    broken = tmp_path / "python-without-galaxy-tui"
    broken.write_text("#!/bin/sh\necho \"No module named 'galaxy_tui'\" >&2\nexit 1\n")
    broken.chmod(0o755)
    registry = tiny_workspace(tmp_path)
    monkeypatch.setattr(sys, "executable", str(broken))
    with pytest.raises(GalaxyError, match="the supervisor did not start.*No module named 'galaxy_tui'"):
        launch(registry, "tiny")
    (run,) = find_runs(registry)
    assert run.state == "failed" and "No module named 'galaxy_tui'" in run.message


def test_a_reused_pid_is_not_proof_of_life(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    run = wait_final(launch(registry, "tiny"))
    status = read_json(run.dir / "status.json")
    status["state"] = "training"
    (run.dir / "status.json").write_text(json.dumps(status))
    events = (run.dir / "events.jsonl").read_text().splitlines()
    mid_training = [line for line in events if json.loads(line)["type"] not in ("eval", "finished", "exited")]
    (run.dir / "events.jsonl").write_text("\n".join(mid_training) + "\n")  # as a worker killed mid-training
    supervisor = read_json(run.dir / "supervisor.json")
    supervisor.update(worker_pid=os.getpid(), supervisor_pid=os.getpid())  # alive, but started at another time
    (run.dir / "supervisor.json").write_text(json.dumps(supervisor))
    assert run_info(run.dir).state == "lost"


def test_run_survives_the_process_that_launched_it(tmp_path: Path) -> None:
    tiny_workspace(tmp_path, epochs=3)
    follower = subprocess.Popen([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path),
                                 "train", "tiny"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    registry = load_registry(tmp_path / "experiments.toml")
    run = wait_for(lambda: find_runs(registry) and find_runs(registry)[0])
    wait_for(lambda: "step" in types(run.dir))
    follower.kill()
    follower.wait()
    assert wait_final(run).state == "finished"


def test_checkpoint_choices(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    first = wait_final(launch(registry, "tiny"))
    with pytest.raises(GalaxyError, match="--resume .*--restart .*--skip"):
        launch(registry, "tiny")
    skipped = wait_final(launch(registry, "tiny", "skip"))
    assert skipped.id == first.id and skipped.state == "finished" and skipped.attempt == 2
    assert "step" not in types(first.dir)[types(first.dir).index("exited") + 1:]
    restarted = wait_final(launch(registry, "tiny", "restart"))
    assert restarted.id != first.id and restarted.state == "finished"
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(model="galaxy10-cnn"))
    with pytest.raises(GalaxyError, match="model: 'tiny-cnn' -> 'galaxy10-cnn'.*--restart"):
        launch(load_registry(registry.path), "tiny", "resume")


def test_headless_without_terminal_refuses_to_guess(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    wait_final(launch(registry, "tiny"))
    out = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "train", "tiny"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "add --resume, --restart or --skip" in out.stderr and "Traceback" not in out.stderr


def test_cli_runs_and_show_tell_the_truth(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path)
    run = wait_final(launch(registry, "tiny"))
    env = {**os.environ, "COLUMNS": "160"}
    listing = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "runs"],
                             capture_output=True, text=True, env=env, check=True).stdout
    assert run.id in listing and "finished" in listing
    shown = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "show", run.id],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert "test accuracy" in shown and "confusion matrix" in shown and "edge_on" in shown
    missing = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "show", "nope"],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    assert get_run(registry, "tiny-2").id == run.id  # a unique prefix also finds it
    (registry.runs_dir / f"{run.id}-copy").mkdir()
    (registry.runs_dir / f"{run.id}-copy" / "status.json").write_text("{}")
    with pytest.raises(GalaxyError, match="'tiny-2' starts 2 run ids .*type more of the one you mean"):
        get_run(registry, "tiny-2")


def test_failed_run_reports_its_message(tmp_path: Path) -> None:
    """The data no longer fits after launch (here: the frozen labelling edited to leave a class empty):
    the worker fails with the user's message, not a traceback."""
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 1})
    run = wait_final(launch(registry, "tiny"))
    config = run.dir / "config.toml"
    config.write_text(config.read_text().replace("threshold = 0.7", "threshold = 1.0"))
    (run.dir / "split.csv").unlink()
    worker = subprocess.run([sys.executable, "-m", "galaxy_tui.train.worker", str(run.dir), "--mode", "train"],
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 1
    status = read_json(run.dir / "status.json")
    assert status["state"] == "failed" and "has no galaxies at this labelling" in status["message"]
    failed = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "failed"][-1]
    assert failed["traceback"] is None  # a user error, not a bug


@pytest.mark.usefixtures("cpu_ranks")
def test_two_processes_with_ddp_on_cpu(tmp_path: Path) -> None:
    """devices = 2 runs the worker under torchrun with the gloo backend (CPU) — the same bookkeeping NCCL
    runs on GPUs. One epoch, so evaluation follows training at once (ranks > 0 must not read best.pt
    before rank 0 wrote it); the ranks must take every validation decision together."""
    registry = tiny_workspace(tmp_path, epochs=1, extra={"devices": 2, "micro_batch": "auto",
                                                         "scheduler": "plateau"})
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    events = read_events(run.dir / "events.jsonl")
    kinds = [e["type"] for e in events]
    assert [e["world"] for e in events if e["type"] == "started"] == [2]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1]
    # the image cache is built before the process group exists (no collective timeout during a long build)
    assert "prepare" in kinds and max(i for i, k in enumerate(kinds) if k == "prepare") < kinds.index("distributed")
    assert next(e for e in events if e["type"] == "distributed")["backend"] == "gloo"
    probe = next(e for e in events if e["type"] == "probe_done")
    assert probe["effective_batch"] == 32 and probe["micro_batch"] * probe["accumulation"] == 16
    assert len(list((run.dir / "ranks").rglob("stdout.log"))) == 2
    decisions = rank_lines(run.dir, "epoch")
    assert set(decisions) == {0, 1} and decisions[0] == decisions[1]  # same val figures, best, LR
    seeds = rank_lines(run.dir, "seed")
    assert seeds[0] != seeds[1]  # each rank its own random stream (dropout, augmentation)
    launch_env = json.loads((run.dir / "launch.json").read_text())["env"]
    assert launch_env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == "600"


@pytest.mark.usefixtures("cpu_ranks")
def test_an_oom_on_one_ddp_rank_ends_the_attempt_and_resume_probes_again(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates an out-of-memory error on rank 1 only, after the synced micro-batch's forward (DDP has
    prepared its gradient reduction; the other rank waits in a collective). The attempt must end
    `failed` naming the rank and the cause, without hanging; resume probes the micro-batch again."""
    registry = tiny_workspace(tmp_path, epochs=2, extra={"devices": 2, "micro_batch": "auto",
                                                         "max_steps_per_epoch": 3})
    monkeypatch.setenv("GALAXY_TUI_INJECT_OOM", "steps=5 below=0 phase=backward rank=1")
    run = wait_final(launch(registry, "tiny"), timeout=120)
    assert run.state == "failed", (run.dir / "worker.log").read_text()[-3000:]
    assert run.message.startswith("rank 1: out of memory at step 5") and "resume probes" in run.message
    monkeypatch.delenv("GALAXY_TUI_INJECT_OOM")
    resumed = wait_final(launch(registry, "tiny", "resume"), timeout=120)
    assert resumed.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    events = read_events(run.dir / "events.jsonl")
    after_resume = [e["type"] for e in events[next(i for i, e in enumerate(events) if e["type"] == "resumed"):]]
    assert "probe_trial" in after_resume
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]


def test_injected_oom_spike_keeps_effective_batch_and_step_count(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a CUDA OOM spike (torch.cuda.OutOfMemoryError injected at optimizer step 3) in the real worker."""
    clean = wait_final(launch(tiny_workspace(tmp_path / "clean"), "tiny"))
    monkeypatch.setenv("GALAXY_TUI_INJECT_OOM", "steps=3 below=8")
    spiked = wait_final(launch(tiny_workspace(tmp_path / "spiked"), "tiny"))
    assert clean.state == spiked.state == "finished"
    clean_events, events = read_events(clean.dir / "events.jsonl"), read_events(spiked.dir / "events.jsonl")
    (oom,) = [e for e in events if e["type"] == "oom"]
    assert (oom["step"], oom["micro_batch_before"], oom["micro_batch_after"], oom["accumulation"]) == (3, 16, 8, 4)
    def epoch_steps(stream: list) -> list[int]:
        return [e["step"] for e in stream if e["type"] == "epoch"]

    assert epoch_steps(events) == epoch_steps(clean_events)
    assert read_json(spiked.dir / "status.json")["micro_batch"] == 8


def test_the_demo_is_learnable_and_not_trivial(tmp_path: Path) -> None:
    """The default registry's demo, as a new user runs it: it learns (>= 92% test accuracy) and, being honest
    about difficulty, is not perfect: on the CPU (deterministic here) it makes mistakes in more than one
    class, so the confusion matrix and the mistakes gallery have something to show."""
    from galaxy_tui.registry import ensure_registry
    registry = ensure_registry(tmp_path)
    run = wait_final(launch(registry, "demo-tiny"), timeout=600)
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    metrics = json.loads((run.dir / "results" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.92, metrics
    events = read_events(run.dir / "events.jsonl")  # micro_batch = "auto": the probe ran against a RAM budget
    confusion = np.array(metrics["confusion"])
    rows_with_mistakes = int(((confusion.sum(axis=1) - np.diag(confusion)) > 0).sum())
    on_cpu = str(next(e for e in events if e["type"] == "started").get("device", "cpu")).startswith("cpu")
    assert rows_with_mistakes >= (2 if on_cpu else 1), confusion
    trials = [e for e in events if e["type"] == "probe_trial"]
    done = next(e for e in events if e["type"] == "probe_done")
    assert trials and all(t["phase"] in ("anchor", "predict", "verify", "recover") for t in trials)
    assert any(t["fits"] and t["micro_batch"] == done["micro_batch"] for t in trials)  # it ran before it was chosen
    assert done["micro_batch"] * done["accumulation"] == done["effective_batch"] == 64
    assert next(e for e in events if e["type"] == "telemetry")["available"] is False  # no NVIDIA GPU here


def test_cli_datasets_lists_counts_and_explains_bad_input(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "datasets"]
    listing = subprocess.run(cli + ["--threshold", "0.75"], capture_output=True, text=True, env=env, check=True).stdout
    assert "tiny" in listing and "synthetic" in listing and "elliptical" in listing and "threshold 0.75" in listing
    bad = subprocess.run(cli + ["--threshold", "0.3"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "outside (0.5, 1.0]" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "experiments.toml").write_text("[datasets.x]\nkind = 'galaxy10-h5'\npath = 'missing.h5'\n")
    missing = subprocess.run(cli, capture_output=True, text=True, env=env)
    assert missing.returncode == 0 and "cannot load" in missing.stdout and "not found" in missing.stdout


def test_a_short_run_on_real_sdss_jpegs(tmp_path: Path) -> None:
    """gz1_small: 120 real SDSS cut-outs in class folders, two spiral folders merged; too few to judge accuracy."""
    from conftest import REALDATA
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA}")
    registry = tiny_workspace(tmp_path, epochs=1)
    update_registry(registry.path, lambda raw: (
        raw["datasets"].__setitem__("gz1", {"kind": "image-folder", "path": str(REALDATA), "crop": 0.5,
                                            "exclude": ["4_dont_know"],
                                            "merge": {"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"]}}),
        raw["experiments"]["tiny"].update(dataset="gz1")))
    run = wait_final(launch(load_registry(registry.path), "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    metrics = json.loads((run.dir / "results" / "metrics.json").read_text())
    assert metrics["classes"] == ["elliptical", "spiral", "edge_on", "merger"]
    assert sum(row["support"] for row in metrics["per_class"].values()) == 10  # 10% of the 100 images
    assert metrics["threshold"] is None  # the folders say the classes: no labelling rule to report
    listing = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "datasets"],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"}, check=True).stdout
    gz1_row = next(line for line in listing.splitlines() if "gz1" in line and "image-folder" in line)
    assert "— (its files)" in gz1_row and "threshold" not in gz1_row


def test_headless_train_asks_in_a_terminal(tmp_path: Path) -> None:
    """With a terminal (a pseudo-terminal here), `train` asks what to do with existing checkpoints."""
    import pty
    import select
    registry = tiny_workspace(tmp_path)
    first = wait_final(launch(registry, "tiny"))
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable,
                 [sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "train", "tiny"])
    seen = b""
    deadline = time.monotonic() + 60
    while b"resume/restart/skip/cancel" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            seen += os.read(fd, 4096)
    assert b"already has checkpoints" in seen
    os.write(fd, b"skip\n")
    while True:  # read until the child ends, so it never blocks on a full terminal
        try:
            if not os.read(fd, 4096):
                break
        except OSError:
            break
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run_info(first.dir).attempt == 2 and run_info(first.dir).state == "finished"


HAND_WRITTEN = """\
# my workspace — notes I want to keep
[workspace]
runs_dir = "runs"   # beside the registry
cache_dir = "cache"

[datasets.tiny]
kind = "synthetic"
count = 400
size = 32
seed = 3

[experiments.tiny]   # the quick one
dataset = "tiny"
labels = { threshold = 0.7, min_classifications = 10, max_artifact = 0.5 }
model = "tiny-cnn"
image_size = 32
epochs = 1
optimizer = { name = "adamw", lr = 3e-4, weight_decay = 1e-2 }   # 3e-4, spelled my way
micro_batch = 16
effective_batch = 32
mistakes = 4
"""


def test_the_persons_registry_survives_launch_finish_runs_and_a_threshold_change(tmp_path: Path) -> None:
    """Only what the person changes changes: comments, inline tables, `3e-4`, the file's mode and a
    symlink all survive a run, the read-only commands and a labelling change."""
    from galaxy_tui.registry import Labelling, set_labelling
    target = tmp_path / "dotfiles" / "experiments.toml"
    target.parent.mkdir()
    target.write_text(HAND_WRITTEN)
    target.chmod(0o640)
    (tmp_path / "ws").mkdir()
    link = tmp_path / "ws" / "experiments.toml"
    link.symlink_to(target)
    registry = load_registry(link)
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    for command in ("runs", "datasets", "show"):
        args = [command] + ([run.id] if command == "show" else [])
        subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path / "ws"), *args],
                       capture_output=True, text=True, check=True)
    assert target.read_text() == HAND_WRITTEN  # nothing about runs is written to the registry
    set_labelling(link, "tiny", Labelling(0.85, 10, 0.5))
    assert target.read_text() == HAND_WRITTEN.replace("threshold = 0.7,", "threshold = 0.85,")
    assert link.is_symlink() and target.stat().st_mode & 0o777 == 0o640


def test_a_kill_between_the_best_and_last_checkpoints_never_loses_the_best(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates SIGKILL between the two checkpoint writes of an improving epoch (a test seam kills the
    worker right after the first write). best.pt is written first, so it is never lost: a resume (which needs
    last.pt) refuses and says so, and --skip evaluates best.pt."""
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    monkeypatch.setenv("GALAXY_TUI_KILL_BETWEEN_CHECKPOINTS", "1")
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "killed"
    assert (run.dir / "checkpoints" / "best.pt").exists() and not (run.dir / "checkpoints" / "last.pt").exists()
    monkeypatch.delenv("GALAXY_TUI_KILL_BETWEEN_CHECKPOINTS")
    with pytest.raises(GalaxyError, match="cannot be resumed; its best.pt is kept. --skip evaluates best.pt"):
        launch(registry, "tiny", "resume")
    evaluated = wait_final(launch(registry, "tiny", "skip"))
    assert evaluated.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    assert json.loads((run.dir / "results" / "metrics.json").read_text())["best_epoch"] == 1


def test_openmp_threads_wait_briefly_unless_the_user_said_otherwise() -> None:
    """Spinning OpenMP threads on a loaded CPU wait for the cores they hold (bench/bench_loop.py --sizes)."""
    from galaxy_tui.executors.local import worker_environment
    env = worker_environment(1, {})
    assert env["GOMP_SPINCOUNT"] == "1000" and env["KMP_BLOCKTIME"] == "1"
    assert "GOMP_SPINCOUNT" not in worker_environment(1, {"OMP_WAIT_POLICY": "ACTIVE"})
    assert "KMP_BLOCKTIME" not in worker_environment(1, {"OMP_WAIT_POLICY": "ACTIVE"})
    assert "GOMP_SPINCOUNT" not in worker_environment(1, {"GOMP_SPINCOUNT": "5"})
