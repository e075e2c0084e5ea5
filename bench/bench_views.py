"""Rotation-invariant models, measured: the same backbone trained with `views = 1` (and evaluated plain and with
8-view TTA) against `views = 8` and `views = 16` (cyclic pooling), each trained here through the CLI as a user would:

- the demo's classes (tiny-cnn, 48 px, 6 epochs);
- the demo's vote fractions (tiny-cnn, 48 px, 10 epochs): RMSE over the answers;
- the real SDSS cut-outs (elliptical, spiral, edge-on; tiny-cnn, 64 px, 60 epochs): too few to measure accuracy
  well (8 test galaxies), but real pixels for the rotation spread.

Printed per run: the test figure (accuracy or RMSE; views = 1 also with TTA), and how much its predictions move
when the galaxy is turned: each test galaxy turned by 0, 45, ..., 315 degrees (PIL, bilinear, dark corners), the
standard deviation of each predicted output over the 8 turns, averaged over outputs and galaxies. An invariant
model gives ~0 over the quarter turns and little over the 45-degree ones.

    python bench/bench_views.py      # about 10 minutes on 2 cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cli_workspace import SDSS_3_CLASSES, train, workspace
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.inference.galaxy_sources import dataset_items
from galaxy_tui.inference.predicting import Item, predict_items
from galaxy_tui.inference.servable import load_run
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import get_run

TURNS = tuple(range(0, 360, 45))
DEMO = {"model": "tiny-cnn", "image_size": 48, "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-2},
        "micro_batch": "auto", "effective_batch": 64, "scheduler": "cosine"}
CLASSES = {**DEMO, "dataset": "demo", "epochs": 6, "sampler": "weighted",
           "labels": {"threshold": 0.8, "min_classifications": 10, "max_artifact": 0.5}}
FRACTIONS = {**DEMO, "dataset": "demo", "epochs": 10, "task": "vote-fractions", "loss": "mse"}
SDSS = {**DEMO, "dataset": "sdss", "image_size": 64, "epochs": 60, "effective_batch": 16,
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 5e-2}}
EXPERIMENTS = {f"{name}-v{views}": {**table, **({"views": views} if views > 1 else {"tta": True})}
               for name, table in (("classes", CLASSES), ("fractions", FRACTIONS), ("sdss", SDSS))
               for views in (1, 8, 16)}
WORKSPACE = {
    "workspace": {"runs_dir": "runs", "cache_dir": "cache"},
    "datasets": {"demo": {"kind": "synthetic", "count": 3000, "size": 64, "seed": 0},
                 "sdss": SDSS_3_CLASSES},
    "experiments": EXPERIMENTS,
}


def turned(item: Item, angle: int) -> Item:
    def read() -> np.ndarray:
        return np.asarray(Image.fromarray(item.read()).rotate(angle, resample=Image.Resampling.BILINEAR))
    return Item(item.id, item.where, read)


def rotation_spread(root: Path, run_id: str, tta: bool) -> float:
    registry = load_registry(root / "experiments.toml")
    run = get_run(registry, run_id)
    loaded = load_run(run.dir)
    tested = set(pd.read_csv(run.dir / "split.csv", dtype={"id": str}).query("split == 'test'")["id"])
    dataset = read_frozen(run.dir).experiment.dataset
    items = [item for item in dataset_items(registry, dataset, run, False) if item.id in tested]
    outputs = np.stack([predict_items(loaded, [turned(item, angle) for item in items], tta=tta).output_array
                        for angle in TURNS])
    return float(outputs.std(0).mean())


def main() -> int:
    with workspace(WORKSPACE) as root:
        print(f"{'run':14s} {'test figure':>22s} {'with 8-view TTA':>16s} {'spread over 8 turns of 45°':>28s}"
              f" {'(with TTA)':>11s} {'train s':>8s}")
        for experiment, table in EXPERIMENTS.items():
            run_id = train(root, experiment)
            metrics = json.loads((root / "runs" / run_id / "results" / "metrics.json").read_text())
            name = "rmse" if table.get("task") == "vote-fractions" else "accuracy"
            tta = (metrics.get("tta") or {}).get(name)
            spread = rotation_spread(root, run_id, tta=False)
            spread_tta = rotation_spread(root, run_id, tta=True) if table.get("tta") else None
            print(f"{experiment:14s} {name + ' ' + format(metrics[name], '.4f'):>22s} "
                  f"{'' if tta is None else format(tta, '.4f'):>16s} {spread:28.4f} "
                  f"{'' if spread_tta is None else format(spread_tta, '.4f'):>11s} {metrics.get('seconds', 0):8.0f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
