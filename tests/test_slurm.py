"""Slurm as an executor, against a real one-node Slurm cluster this module starts (tests/slurm_cluster.py): a run
submitted -> pending (with Slurm's reason) -> running -> finished; stop by scancel -> stopped -> resume finishes;
a job past its time limit -> killed with the reason; a job Slurm forgot -> lost; two Slurm tasks running the
CPU/gloo DDP path. What cannot be tried on one host: several nodes (the rendezvous across hosts)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.executors import slurm
from galaxy_tui.executors.slurm_task import mode_for, torchrun_variables
from galaxy_tui.registry import Registry, SlurmSettings, load_registry, update_registry
from galaxy_tui.runs import RunInfo, launch, run_info, stop_run
from slurm_cluster import slurm_cluster, unavailable
from workspace_fixture import tiny_workspace, wait_final, wait_for

# ------------------------------------------------------------------ without a cluster


def test_the_job_script_asks_one_task_per_gpu_on_every_node(tmp_path: Path) -> None:
    settings = SlurmSettings(partition="gpu", account="astro", time="04:00:00", nodes=2, gpus_per_node=4,
                             cpus_per_task=8, mem="64G", extra=("--qos=high",))
    script = slurm.job_script(tmp_path / "run-1", "train", settings, 1, tmp_path, {"A": "b c"})
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64G", "#SBATCH --time=04:00:00",
                 "#SBATCH --partition=gpu", "#SBATCH --account=astro", "#SBATCH --requeue", "#SBATCH --qos=high",
                 "export A='b c'"):
        assert line in script.splitlines(), line
    assert "srun --kill-on-bad-exit=1 --label" in script and f"{tmp_path / 'run-1'}/worker.log" in script
    cpu = slurm.job_script(tmp_path / "run-1", "train", SlurmSettings(requeue=False), 2, tmp_path, {})
    assert "#SBATCH --ntasks-per-node=2" in cpu and "--gpus-per-node" not in cpu and "--no-requeue" in cpu


def test_a_task_gets_torchrun_s_variables_from_slurm_s(tmp_path: Path) -> None:
    found = torchrun_variables({"SLURM_JOB_ID": "4242", "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
                                "SLURM_NTASKS_PER_NODE": "4(x2)", "SLURM_JOB_NODELIST": "nodeA"})
    assert found == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                     "MASTER_ADDR": "nodeA", "MASTER_PORT": str(20000 + 4242 % 20000)}
    (tmp_path / "checkpoints").mkdir()
    assert mode_for(tmp_path, "train", {"SLURM_RESTART_COUNT": "1"}) == "train"  # nothing to resume yet
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    assert mode_for(tmp_path, "train", {"SLURM_RESTART_COUNT": "1"}) == "resume"  # requeued: continue
    assert mode_for(tmp_path, "train", {}) == "train"


def test_the_registry_reads_slurm_settings_and_refuses_what_sbatch_would(tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path / "ok", {"partition": "gpu", "time": "1-00:00:00", "gpus_per_node": 4},
                                experiment={"slurm": {"time": "30", "mem": "32G"}})
    assert registry.executor == "slurm"
    assert registry.slurm_of("tiny") == SlurmSettings(partition="gpu", time="30", gpus_per_node=4, mem="32G")
    for keys, message in (({"time": "soon"}, "is not a Slurm time limit"), ({"nodes": 0}, "nodes = 0 must be >= 1"),
                          ({"extra": ["qos=high"]}, "each starting with '-'")):
        with pytest.raises(GalaxyError, match=message):
            _slurm_workspace(tmp_path / str(len(message)), keys)
    with pytest.raises(GalaxyError, match="executor = 'cloud' is not one of: local, slurm"):
        tiny_workspace(tmp_path / "bad", extra={"executor": "cloud"})


def test_a_silent_controller_leaves_the_state_as_written_and_is_asked_at_most_every_two_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a Slurm controller that does not answer: an `squeue` on PATH that fails (and counts its calls)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"#!/bin/sh\necho x >> {calls}\necho 'slurm_load_jobs error' >&2\nexit 1\n")
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    slurm.forget_queue()
    run = tmp_path / "runs" / "tiny-1"
    run.mkdir(parents=True)
    atomic_write_json(run / "status.json", {"experiment": "tiny", "state": "training", "executor": "slurm"})
    atomic_write_json(run / "slurm.json", {"job_id": "77", "attempt": 1})
    seen = [run_info(run) for _ in range(20)]
    assert {(info.state, info.message.split(":")[0]) for info in seen} == \
        {("training", "Slurm does not answer (squeue failed)")}
    assert calls.read_text().count("x") == 1
    slurm.forget_queue()


# ------------------------------------------------------------------ against a real cluster

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    why = unavailable()
    if why:
        pytest.skip(why)
    with slurm_cluster(tmp_path_factory.mktemp("slurm-cluster")) as env:
        before = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        slurm.forget_queue()
        try:
            yield env
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            slurm.forget_queue()


def _slurm_workspace(root: Path, settings: dict[str, Any], epochs: int = 1,
                     experiment: dict[str, Any] | None = None) -> Registry:
    registry = tiny_workspace(root, epochs=epochs, count=300, extra=experiment)

    def use_slurm(raw: Any) -> None:
        raw["workspace"]["executor"] = "slurm"
        raw["workspace"]["slurm"] = settings
    return update_registry(registry.path, use_slurm)


def _settled(run: RunInfo, timeout: float = 240.0) -> RunInfo:
    slurm.forget_queue()
    return wait_final(run, timeout)


def _only_run(workspace: Path) -> Path:
    return next(d for d in (workspace / "runs").iterdir() if d.is_dir() and not d.name.startswith("."))


def _sbatch_blocker() -> str:
    """A job holding every CPU of the node, so the next one waits for resources."""
    done = subprocess.run(["sbatch", "--parsable", f"--cpus-per-task={os.cpu_count()}", "--wrap", "sleep 300",
                           "--output=/dev/null"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.slow
def test_a_run_waits_in_the_queue_with_slurm_s_reason_then_trains_and_finishes(cluster: dict, tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path, {"time": "10"})
    blocker = _sbatch_blocker()
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "train", "tiny",
                           "--executor", "slurm", "--detach"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Slurm job" in done.stdout, done.stderr
    run = run_info(_only_run(tmp_path))

    def pending() -> RunInfo | None:
        slurm.forget_queue()
        info = run_info(run.dir)
        return info if info.state == "pending" else None
    waiting = wait_for(pending, 60)
    assert waiting.reason in ("Resources", "Priority") and "waiting in Slurm's queue" in waiting.message
    listed = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "runs"],
                            capture_output=True, text=True, timeout=60)
    assert f"pending ({waiting.reason})" in listed.stdout
    subprocess.run(["scancel", blocker], check=True)
    final = _settled(run)
    assert final.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    assert (run.dir / "results" / "metrics.json").exists() and (run.dir / "slurm.sh").exists()
    exited = [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "exited"]
    assert [e["slurm_state"] for e in exited] == ["COMPLETED"]
    assert load_registry(registry.path).executor == "slurm"


@pytest.mark.slow
def test_stop_is_a_scancel_the_worker_checkpoints_and_resume_finishes(cluster: dict, tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path, {}, epochs=200)
    run = launch(registry, "tiny")  # the workspace's executor: what the UI's launch does
    assert run.job and run.state in ("submitted", "pending", "queued")
    wait_for(lambda: run_info(run.dir).epoch >= 1, 180)
    stop_run(registry, run.id)
    stopped = _settled(run)
    assert stopped.state == "stopped", stopped.message
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=stopped.epoch + 1))
    resumed = launch(load_registry(registry.path), "tiny", "resume")
    assert resumed.id == run.id and resumed.attempt == 2 and resumed.job != run.job
    final = _settled(resumed)
    assert final.state == "finished", final.message
    events = read_events(run.dir / "events.jsonl")
    assert any(e["type"] == "resumed" and e["epoch"] == stopped.epoch for e in events)
    skipped = _settled(launch(load_registry(registry.path), "tiny", "skip"))  # evaluate again, as a job too
    assert skipped.state == "finished" and skipped.attempt == 3 and skipped.job


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_killed_with_slurm_s_reason(cluster: dict, tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path, {"time": "1"}, epochs=100000)  # one minute: the shortest limit
    run = launch(registry, "tiny")
    final = _settled(run, timeout=300)
    assert final.state == "killed" and final.message.startswith("Slurm ended the job at its time limit (TIMEOUT")
    assert "resume continues" in final.message
    assert (run.dir / "checkpoints" / "last.pt").exists()  # SIGTERM came first: the worker checkpointed
    assert [e["type"] for e in read_events(run.dir / "events.jsonl")][-2:] == ["exited", "killed"]


@pytest.mark.slow
@pytest.mark.usefixtures("cpu_ranks")
def test_two_slurm_tasks_train_through_ddp_with_gloo(cluster: dict, tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path, {}, experiment={"devices": 2})
    run = launch(registry, "tiny")
    final = _settled(run)
    assert final.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    started = next(e for e in read_events(run.dir / "events.jsonl") if e["type"] == "started")
    assert started["world"] == 2
    log = (run.dir / "worker.log").read_text()
    sums = {rank: [line.split("sum ")[1] for line in log.splitlines()
                   if line.startswith(f"{rank}: rank {rank}: weights")] for rank in (0, 1)}
    assert sums[0] and sums[0] == sums[1]  # the ranks hold the same weights after each epoch


@pytest.mark.slow
def test_a_refused_job_and_a_forgotten_job_say_so(cluster: dict, tmp_path: Path) -> None:
    registry = _slurm_workspace(tmp_path, {"partition": "nosuch"})
    with pytest.raises(GalaxyError, match="sbatch refused the job .*partition"):
        launch(registry, "tiny")
    refused = run_info(_only_run(tmp_path))
    assert refused.state == "failed" and "sbatch refused" in refused.message
    atomic_write_json(refused.dir / "slurm.json", {"job_id": "999999", "attempt": 1})
    atomic_write_json(refused.dir / "status.json", {**read_json(refused.dir / "status.json"), "state": "training"})
    slurm.forget_queue()
    lost = run_info(refused.dir)
    assert lost.state == "lost" and "neither squeue nor sacct" in lost.message


@pytest.mark.slow
def test_a_requeued_job_resumes_from_its_last_checkpoint(cluster: dict, tmp_path: Path) -> None:
    """What a preemption with requeue does, asked of Slurm directly (scontrol requeue): the job goes back in the
    queue, starts again with SLURM_RESTART_COUNT = 1, and the worker resumes from last.pt."""
    registry = _slurm_workspace(tmp_path, {}, epochs=100000)
    run = launch(registry, "tiny")
    wait_for(lambda: run_info(run.dir).epoch >= 2, 180)
    subprocess.run(["scontrol", "requeue", run.job], check=True, capture_output=True)
    # Slurm holds a requeued job back for two minutes (BeginTime); a preempted one would wait its turn anyway
    wait_for(lambda: run_info(run.dir).reason == "BeginTime", 60)
    subprocess.run(["scontrol", "update", f"JobId={run.job}", "StartTime=now"], check=True, capture_output=True)

    def resumed() -> list[dict]:
        return [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "resumed"]
    again = wait_for(resumed, 240)
    assert again[0]["epoch"] >= 2
    assert [e["mode"] for e in read_events(run.dir / "events.jsonl") if e["type"] == "started"] == ["train", "resume"]
    wait_for(lambda: run_info(run.dir).state == "training", 120)
    stop_run(registry, run.id)
    assert _settled(run).state == "stopped"


@pytest.mark.slow
def test_a_predict_job_runs_as_a_slurm_job(cluster: dict, tmp_path: Path) -> None:
    """A predict job through the same launcher as a run, on the Slurm executor: submitted, classified, settled."""
    from galaxy_tui.inference.predict_jobs import read_job, start_predict_job
    registry = _slurm_workspace(tmp_path, {"time": "10"})
    run = _settled(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    images = tmp_path / "images"
    images.mkdir()
    from conftest import write_jpeg
    for n in range(5):
        write_jpeg(images / f"g{n}.jpg", n)
    folder = start_predict_job(run.dir, [images], tmp_path, "slurm", registry.slurm)
    assert read_json(folder / "slurm.json")["job_id"] and (folder / "slurm.sh").exists()
    assert "--module galaxy_tui.inference.predict_worker" in (folder / "slurm.sh").read_text()

    def ended():  # noqa: ANN202
        slurm.forget_queue()
        job = read_job(folder)
        return None if job.live else job
    job = wait_for(ended, 240)
    assert job.state == "finished", (folder / "worker.log").read_text()[-3000:]
    assert len((folder / "predictions.csv").read_text().splitlines()) == 6
    exited = [e for e in read_events(folder / "events.jsonl") if e["type"] == "exited"]
    assert [e["slurm_state"] for e in exited] == ["COMPLETED"]
