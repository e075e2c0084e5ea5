"""Run folders written by hand, byte for byte the same every time, for pictures of the panes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from PIL import Image

from galaxy_tui.data.synthetic import render_galaxy
from galaxy_tui.telemetry import GpuSample, Reading

T0 = 1_790_000_000.0
GIB = 1 << 30
FROZEN_GPU_UUID = "GPU-5e0c0a1d-7d2b-4c1e-9f3a-0123456789ab"


class FrozenTelemetry:
    """Simulates one NVIDIA GPU with a fixed history (no NVML involved): 5 minutes of samples."""

    def __init__(self) -> None:
        self.history = [Reading(True, "", (GpuSample(0, "NVIDIA A100-SXM4-40GB", int((20 + 10 * np.sin(i / 9)) * GIB),
                                                     40 * GIB, 250.0 + 60 * np.cos(i / 7), 400.0, 97, 71,
                                                     uuid=FROZEN_GPU_UUID),), T0 + i)
                        for i in range(300)]
        self.latest = self.history[-1]

    def start(self) -> FrozenTelemetry:
        return self

    def stop(self) -> None:
        pass


def _events(run_dir: Path, events: list[dict]) -> None:
    with open(run_dir / "events.jsonl", "w") as handle:
        for i, event in enumerate(events):
            handle.write(json.dumps({"t": T0 + i, **event}) + "\n")


def _finished_run(runs: Path) -> None:
    run = runs / "demo-tiny-20261101-120000"
    (run / "results" / "mistakes").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "status.json").write_text(json.dumps({"experiment": "demo-tiny", "state": "finished", "attempt": 1,
                                                 "epoch": 8, "epochs": 8, "step": 152, "best_metric": 0.9981,
                                                 "started": T0, "updated": T0 + 90}))
    (run / "config.toml").write_text(tomli_w.dumps({"run": {"experiment": "demo-tiny"}}))
    log = "".join(f"12:00:{10 + e:02d} epoch epoch={e} val_acc=0.9{e}\n" for e in range(1, 9))
    (run / "worker.log").write_text(log)
    events: list[dict] = [{"type": "started", "mode": "train", "attempt": 1, "device": "cuda:0",
                           "gpus": [FROZEN_GPU_UUID.removeprefix("GPU-")]}]
    # A self-consistent probe: effective batch 256 and a 36 GiB budget (a resnet18 at 224 px: about
    # 1.1 GiB fixed + 0.14 GiB per galaxy), so 229 is the largest micro-batch that fits.
    budget = 36 * GIB
    for i, (size, peak, phase, fits) in enumerate([(2, 1.38, "anchor", True), (16, 3.34, "anchor", True),
                                                   (229, 33.2, "verify", True)], 1):
        events.append({"type": "probe_trial", "trial": i, "phase": phase, "micro_batch": size,
                       "peak_bytes": int(peak * GIB), "budget_bytes": budget, "fits": fits, "seconds": 0.4 * i,
                       "predicted": 229})
    events.append({"type": "probe_done", "micro_batch": 229, "accumulation": 2, "effective_batch": 256})
    step = 0
    for epoch in range(1, 9):
        for k in range(1, 20):
            step += 1
            loss = round(1.2 * np.exp(-step / 30) + 0.15, 4)
            if step == 40:  # a spike: the same batch re-split, 229 -> 114 (x3 reaches 256 again)
                events.append({"type": "oom", "step": 40, "micro_batch_before": 229, "micro_batch_after": 114,
                               "accumulation": 3})
            events.append({"type": "step", "epoch": epoch, "step": step, "loss": loss, "lr": 0.003,
                           "samples_per_s": 4800.0, "step_in_epoch": k, "steps_per_epoch": 19})
        events.append({"type": "epoch", "epoch": epoch, "train_loss": round(0.9 * np.exp(-epoch / 3) + 0.18, 4),
                       "val_loss": round(0.8 * np.exp(-epoch / 2) + 0.07, 4),
                       "val_acc": round(1 - 0.4 * np.exp(-epoch / 1.5), 4), "seconds": 11.0, "step": step})
    events += [{"type": "finished", "accuracy": 0.9625}, {"type": "exited", "code": 0, "signal": None}]
    _events(run, events)
    classes = ["elliptical", "spiral", "edge_on"]
    metrics = {"split": "test", "loss": 0.0819, "accuracy": 0.9625, "macro_f1": 0.9611, "classes": classes,
               "per_class": {"elliptical": {"precision": 0.97, "recall": 0.986, "f1": 0.978, "support": 71},
                             "spiral": {"precision": 0.955, "recall": 0.955, "f1": 0.955, "support": 44},
                             "edge_on": {"precision": 0.955, "recall": 0.933, "f1": 0.944, "support": 45}},
               "confusion": [[70, 0, 1], [1, 42, 1], [1, 2, 42]], "best_epoch": 8, "best_val_acc": 0.9981,
               "model": "tiny-cnn", "threshold": 0.8, "seconds": 95.0}
    (run / "results" / "metrics.json").write_text(json.dumps(metrics))
    rows = []
    for i, (kind, true, predicted) in enumerate([(1, "spiral", "elliptical"), (2, "edge_on", "spiral"),
                                                 (0, "elliptical", "edge_on"), (2, "edge_on", "elliptical")]):
        image = render_galaxy(kind, 0.1, 0.8, 64, np.random.default_rng(i))
        name = f"{i + 1:03d}_syn-{i}.png"
        Image.fromarray(image).save(run / "results" / "mistakes" / name)
        agreement = (0.81, 0.64, 0.93, 0.7)[i]  # volunteers most split on the second mistake
        rows.append({"file": name, "id": f"syn-{i}", "true": true, "predicted": predicted,
                     "confidence": 0.91 - 0.1 * i, "votes_smooth": round(1 - agreement, 2), "votes_disk": agreement,
                     "votes_edgeon_yes": 0.1, "votes_spiral": agreement, "votes_total_classifications": 40,
                     "votes_agreement": agreement})
    pd.DataFrame(rows).to_csv(run / "results" / "mistakes" / "mistakes.csv", index=False)


def _failed_run(runs: Path) -> None:
    run = runs / "demo-tiny-20261101-110000"
    run.mkdir(parents=True)
    message = "out of memory at step 12 even with micro-batch 1; use a smaller model or image_size"
    (run / "status.json").write_text(json.dumps({"experiment": "demo-tiny", "state": "failed", "attempt": 1, "epoch": 0,
                                                 "epochs": 8, "started": T0 - 3600, "updated": T0 - 3500,
                                                 "message": message}))
    _events(run, [{"type": "started", "mode": "train", "attempt": 1}, {"type": "failed", "message": message}])


def fixture_workspace(root: Path) -> Path:
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
           "datasets": {"demo": {"kind": "synthetic", "count": 600, "size": 64, "seed": 0}},
           "experiments": {"demo-tiny": {"dataset": "demo", "model": "tiny-cnn", "epochs": 8,
                                         "labels": {"threshold": 0.8}}}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "experiments.toml").write_text(tomli_w.dumps(raw))
    _finished_run(root / "runs")
    _failed_run(root / "runs")
    return root


def add_live_run(root: Path, run_id: str = "demo-tiny-20261101-130000") -> str:
    """A run in training whose worker and supervisor are this very process (alive as long as the test),
    so the app treats it as live; newer than the fixture's other runs."""
    from galaxy_tui.procinfo import boot_id, start_ticks
    run = root / "runs" / run_id
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"experiment": "demo-tiny", "state": "training", "attempt": 1,
                                                 "epoch": 2, "epochs": 8, "started": T0 + 3600,
                                                 "updated": T0 + 3700}))
    me, ticks = os.getpid(), start_ticks(os.getpid())
    (run / "supervisor.json").write_text(json.dumps({"boot_id": boot_id(), "worker_pid": me, "worker_start": ticks,
                                                     "supervisor_pid": me, "supervisor_start": ticks}))
    _events(run, [{"type": "started", "mode": "train", "attempt": 1}])
    return run_id
