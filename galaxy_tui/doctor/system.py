"""The checks that go through whole runs and the devices' counters: several ranks training through the real
torchrun path (their weights equal at the end; an out-of-memory error on one rank ending the attempt cleanly and
a resume probing again), the collective's bandwidth, NVML's telemetry for the GPUs in use (its energy counter
against the power it reported), and a detached run outliving the process that launched it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w
import torch

from galaxy_tui.doctor.bandwidth import allreduce_bandwidth
from galaxy_tui.doctor.report import FAIL, NEEDS_GPU, PASS, SKIP, Check
from galaxy_tui.events import read_events
from galaxy_tui.registry import Registry, load_registry
from galaxy_tui.runs import RunInfo, launch, run_info
from galaxy_tui.telemetry import Reading, same_gpu

RUN_TIMEOUT_S = 300.0


@contextmanager
def tiny_workspace(experiment: dict[str, Any]) -> Iterator[Registry]:
    """A throwaway workspace with the demo renderer's galaxies and one small experiment, `doctor`."""
    with tempfile.TemporaryDirectory(prefix="galaxy-doctor-") as folder:
        root = Path(folder)
        raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
               "datasets": {"demo": {"kind": "synthetic", "count": 400, "size": 32, "seed": 1}},
               "experiments": {"doctor": {"dataset": "demo", "model": "tiny-cnn", "image_size": 32, "epochs": 2,
                                          "micro_batch": 16, "effective_batch": 32, "mistakes": 0,
                                          "labels": {"threshold": 0.7}, **experiment}}}
        (root / "experiments.toml").write_text(tomli_w.dumps(raw))
        yield load_registry(root / "experiments.toml")


def settled(run_dir: Path, timeout_s: float = RUN_TIMEOUT_S) -> RunInfo:
    """The run once it has ended and its supervisor has recorded the worker's exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = run_info(run_dir)
        exits = sum(e.get("type") == "exited" for e in read_events(run_dir / "events.jsonl"))
        if not info.is_live and exits >= info.attempt:
            return info
        time.sleep(0.2)
    return run_info(run_dir)


def detached_run() -> Check:
    """`galaxy-tui train` is killed (SIGKILL) once its run trains: the run goes on to finish."""
    with tiny_workspace({"epochs": 3}) as registry:
        root = registry.path.parent
        started = time.monotonic()
        follower = subprocess.Popen([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "train",
                                     "doctor"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        runs = root / "runs"
        run_dir = None
        while time.monotonic() - started < RUN_TIMEOUT_S and follower.poll() is None:
            folders = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")) \
                if runs.is_dir() else []
            if folders and run_info(folders[0]).state == "training":
                run_dir = folders[0]
                break
            time.sleep(0.1)
        if run_dir is None:
            follower.kill()
            return Check("detached run", FAIL, "the run never reached training", {"launcher_exit": follower.poll()})
        training_after = time.monotonic() - started
        os.killpg(follower.pid, signal.SIGKILL)
        follower.wait()
        final = settled(run_dir)
    figures = {"training_after_s": round(training_after, 1), "launcher": "killed with SIGKILL",
               "final_state": final.state, "epoch": final.epoch, "epochs": final.epochs}
    if final.state != "finished":
        return Check("detached run", FAIL, f"after its launcher was killed the run ended {final.state}: "
                                           f"{final.message}", figures)
    return Check("detached run", PASS, "the launcher was killed while the run trained; the run finished on its "
                                       "own", figures)


WEIGHTS_LOGGED = re.compile(r"rank (\d+): weights after epoch \d+: sum (\S+)")


def rank_weight_sums(run_dir: Path) -> dict[int, list[str]]:
    """What each rank logged of its weights after each epoch (torchrun prefixes each line with its rank)."""
    sums: dict[int, list[str]] = {}
    for found in WEIGHTS_LOGGED.finditer((run_dir / "worker.log").read_text(errors="replace")):
        sums.setdefault(int(found.group(1)), []).append(found.group(2))
    return sums


def several_devices(requested: int | None, quick: bool) -> Check:
    """K ranks (the GPUs, or `--devices K`: CPU ranks over gloo where there are no GPUs) train through the real
    torchrun path and end with equal weights; not --quick: an out-of-memory error that no re-split cures on
    rank 1 ends the attempt `failed`, and a resume probes again and finishes."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    world = requested or gpus
    if world < 2:
        return Check("several devices", SKIP, f"needs 2 or more CUDA GPUs (this box has {gpus}); "
                                              f"--devices 2 tries two CPU ranks")
    backend = "nccl" if gpus >= world else "gloo"
    figures: dict[str, Any] = {"ranks": world, "backend": backend if gpus >= world else "gloo (CPU ranks)",
                               "allreduce": allreduce_bandwidth(world, backend)}
    if not figures["allreduce"]["sum_ok"]:
        return Check("several devices", FAIL, f"{backend} all-reduce gave a wrong sum", figures)
    with tiny_workspace({"devices": world, "epochs": 2, "max_steps_per_epoch": 10,
                         "micro_batch": "auto"}) as registry:
        run = settled(launch(registry, "doctor").dir)
        figures["training"] = run.state
        if run.state != "finished":
            return Check("several devices", FAIL, f"a {world}-rank run ended {run.state}: {run.message}", figures)
        sums = rank_weight_sums(run.dir)
        figures["weight_sums"] = {str(rank): values[-1:] for rank, values in sums.items()}
        if len(sums) != world or len({tuple(values) for values in sums.values()}) != 1:
            return Check("several devices", FAIL, "the ranks' weights differ after training", figures)
        if not quick:
            problem = _oom_on_one_rank(registry, figures)
            if problem:
                return Check("several devices", FAIL, problem, figures)
    return Check("several devices", PASS, f"{backend} all-reduce at {figures['allreduce']['bus_gb_per_s']} GB/s "
                                          f"(bus); {world} ranks trained 20 steps and hold the same weights"
                 + ("" if quick else "; an out-of-memory error on rank 1 ended the attempt cleanly, and the resume "
                                     "probed again and finished"), figures)


def _oom_on_one_rank(registry: Registry, figures: dict[str, Any]) -> str | None:
    # At step 12 (the second epoch: the first left a checkpoint to resume from), on rank 1 alone; no micro-batch
    # cures it, so the attempt ends.
    os.environ["GALAXY_TUI_INJECT_OOM"] = "steps=12 below=0 rank=1"
    try:
        failed = settled(launch(registry, "doctor", choice="restart").dir)
    finally:
        os.environ.pop("GALAXY_TUI_INJECT_OOM", None)
    figures["oom_on_rank_1"] = failed.state
    if failed.state != "failed":
        return f"an unrecoverable out-of-memory error on rank 1 ended the attempt {failed.state}, not failed"
    resumed = settled(launch(registry, "doctor", choice="resume").dir)
    probes = [e for e in read_events(resumed.dir / "events.jsonl") if e.get("type") == "probe_done"]
    figures["resumed"], figures["probes"] = resumed.state, len(probes)
    if resumed.state != "finished" or len(probes) < 2:
        return f"the resume after it ended {resumed.state} after {len(probes)} probe(s)"
    return None


def energy_agreement(readings: list[Reading], uuids: list[str]) -> list[dict[str, Any]]:
    """For each GPU in use (by UUID): its energy counter's increase against its reported power integrated over the
    same time (trapezoids), and their ratio."""
    rows = []
    for uuid in uuids:
        points = [(r.t, gpu.power_w, gpu.energy_j) for r in readings for gpu in r.gpus if same_gpu(gpu.uuid, uuid)]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        if len(points) < 2:
            rows.append({"uuid": uuid, "samples": len(points)})
            continue
        counted = points[-1][2] - points[0][2]
        integrated = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(points, points[1:]))
        rows.append({"uuid": uuid, "samples": len(points), "counter_j": round(counted, 1),
                     "integrated_j": round(integrated, 1),
                     "ratio": round(counted / integrated, 3) if integrated > 0 else None,
                     "peak_power_w": max(p[1] for p in points),
                     "peak_memory_gib": max((gpu.mem_used or 0) for r in readings for gpu in r.gpus
                                            if same_gpu(gpu.uuid, uuid)) / 2**30})
    return rows


def telemetry(readings: list[Reading], uuids: list[str]) -> Check:
    """NVML read during the throughput check, for the GPUs in use only."""
    if not uuids:
        return Check("telemetry", SKIP, NEEDS_GPU)
    if not readings or not readings[-1].available:
        return Check("telemetry", FAIL, f"NVML gave no reading: {readings[-1].reason if readings else 'none taken'}")
    rows = energy_agreement(readings, uuids)
    figures = {"gpus": rows, "readings": len(readings)}
    measured = [row for row in rows if row.get("ratio") is not None]
    if not measured:
        return Check("telemetry", SKIP, "NVML reports no power or energy counter for the GPUs in use (older than "
                                        "Volta, or not supported): energy per run is N/A", figures)
    off = [row for row in measured if abs(row["ratio"] - 1) > 0.10]
    if off:
        return Check("telemetry", FAIL, "the energy counter and the integrated power differ by more than 10% ("
                     + ", ".join(f"{row['ratio']:.2f}" for row in off) + "): energy figures may be off", figures)
    return Check("telemetry", PASS, "power, memory and the energy counter read for the GPUs in use; the counter "
                                    "agrees with the integrated power within "
                 + f"{max(abs(row['ratio'] - 1) for row in measured):.1%}", figures)
