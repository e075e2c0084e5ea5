"""The in-domain check, measured: how well each way of scoring "unlike the training galaxies" separates a run's own
test galaxies from galaxies of another kind, for three runs trained here through the CLI as a user would:

- the demo model as shipped (`demo-tiny`: rendered galaxies, 64 px, 8 epochs) asked about the 120 real SDSS cut-outs;
- a barely trained demo model (400 galaxies, 32 px, 1 epoch: the tests' kind) asked about the same real galaxies;
- a model trained on the real SDSS cut-outs (elliptical, spiral, edge-on: 80 galaxies, its own split, 64 px,
  60 epochs) asked about the demo's 3,000 rendered galaxies;
- and one trained on all 120 in their 6 folders that stays at chance (too few galaxies per class): where the check
  is weakest, because the network has learnt nothing to describe them by.

Scores side by side: ours (what the run recorded at evaluation: class-conditional Mahalanobis on the features'
direction and log length), Mahalanobis on the raw features, on the direction alone, the distance to the 5th nearest
training galaxy (cosine), and the largest softmax probability (the usual baseline). Each is flagged beyond its own
99th percentile on the run's validation galaxies, as the product does. Printed: AUROC (own test galaxies vs the
others), the share of own test galaxies flagged and the share of the others flagged.

    python bench/bench_domain.py      # about 90 s on 2 cores
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from cli_workspace import REALDATA, SDSS_3_CLASSES, train, workspace
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.frozen_run import read_frozen
from galaxy_tui.inference.galaxy_sources import dataset_items, file_items
from galaxy_tui.inference.predicting import Item, predict_items
from galaxy_tui.inference.servable import LoadedRun, load_run
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import get_run

TINY = {"model": "tiny-cnn", "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-2},
        "micro_batch": "auto", "scheduler": "cosine"}
WORKSPACE = {
    "workspace": {"runs_dir": "runs", "cache_dir": "cache"},
    "datasets": {"demo": {"kind": "synthetic", "count": 3000, "size": 64, "seed": 0},
                 "weak": {"kind": "synthetic", "count": 400, "size": 32, "seed": 3},
                 "sdss": SDSS_3_CLASSES,
                 "sdss6": {"kind": "image-folder", "path": str(REALDATA)}},
    "experiments": {
        "demo-tiny": {**TINY, "dataset": "demo", "labels": {"threshold": 0.8, "min_classifications": 10,
                                                             "max_artifact": 0.5},
                      "image_size": 64, "epochs": 8, "sampler": "weighted", "effective_batch": 64},
        "weak": {**TINY, "dataset": "weak", "labels": {"threshold": 0.7}, "image_size": 32, "epochs": 1,
                 "micro_batch": 16, "effective_batch": 32},
        "sdss": {**TINY, "dataset": "sdss", "image_size": 64, "epochs": 60, "effective_batch": 16,
                 "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 5e-2}},
        "sdss6": {**TINY, "dataset": "sdss6", "image_size": 64, "epochs": 30, "effective_batch": 16,
                  "optimizer": {"name": "adamw", "lr": 2e-3, "weight_decay": 1e-2}},
    },
}
QUANTILE = 99


def described(features: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(length, 1e-12)


def mahalanobis(train: np.ndarray, groups: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    labels, index = np.unique(groups, return_inverse=True)
    means = np.stack([train[index == k].mean(0) for k in range(len(labels))])
    precision = LedoitWolf().fit(train - means[index]).precision_
    return lambda z: np.min([np.einsum("ij,jk,ik->i", z - m, precision, z - m) for m in means], axis=0)


def nearest(train: np.ndarray, k: int = 5) -> Callable[[np.ndarray], np.ndarray]:
    index = NearestNeighbors(n_neighbors=k).fit(described(train))
    return lambda z: index.kneighbors(described(z))[0][:, -1]


def read(loaded: LoadedRun, items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    predicted = predict_items(loaded, items, features=True)
    assert predicted.distance_array is not None, "the run recorded no in-domain check"
    return predicted.feature_array, predicted.output_array.max(1), predicted.distance_array, predicted.ids


def measure(root: Path, experiment: str, run_id: str, others: list[Item], other_name: str) -> None:
    registry = load_registry(root / "experiments.toml")
    run = get_run(registry, run_id)
    loaded = load_run(run.dir)
    frozen = read_frozen(run.dir)
    dataset = load_dataset(registry.dataset(frozen.experiment.dataset), registry.cache_dir)
    groups_by_id = dict(zip(dataset.frame["id"].astype(str), dataset.labels(frozen.experiment.labels)))
    features, confidence, ours, ids = read(loaded, dataset_items(registry, frozen.experiment.dataset, run, False))
    part = pd.read_csv(run.dir / "split.csv", dtype={"id": str}).set_index("id")["split"]
    where = pd.Series(ids).map(part).to_numpy()
    train, val, test = (where == "train"), (where == "val"), (where == "test")
    other_features, other_confidence, other_ours, _ = read(loaded, others)
    groups = np.array([groups_by_id[i] for i in np.array(ids)[train]])
    raw = mahalanobis(features[train], groups)
    direction = mahalanobis(described(features[train]), groups)
    knn = nearest(features[train])
    scores = {"ours (Mahalanobis, direction + log length)": (ours, other_ours),
              "Mahalanobis, raw features": (raw(features), raw(other_features)),
              "Mahalanobis, direction alone": (direction(described(features)), direction(described(other_features))),
              "5th nearest training galaxy (cosine)": (knn(features), knn(other_features)),
              "max softmax (baseline)": (-confidence, -other_confidence)}
    accuracy = loaded.metrics.get("accuracy")
    print(f"\n{experiment} (test accuracy {accuracy:.3f}, {train.sum()} train / {val.sum()} val / {test.sum()} test) "
          f"vs {len(other_ours)} {other_name}; flagged beyond the validation galaxies' {QUANTILE}th percentile")
    print(f"  {'score':46s} {'AUROC':>6s} {'own test flagged':>17s} {other_name + ' flagged':>22s}")
    for name, (own, other) in scores.items():
        threshold = np.percentile(own[val], QUANTILE)
        truth = np.r_[np.zeros(test.sum()), np.ones(len(other))]
        auroc = roc_auc_score(truth, np.r_[own[test], other])
        print(f"  {name:46s} {auroc:6.3f} {np.mean(own[test] > threshold):17.1%} {np.mean(other > threshold):22.1%}")


def main() -> int:
    with workspace(WORKSPACE) as root:
        runs = {experiment: train(root, experiment) for experiment in WORKSPACE["experiments"]}
        registry = load_registry(root / "experiments.toml")
        real = file_items([REALDATA])[0]
        rendered = dataset_items(registry, "demo", get_run(registry, runs["demo-tiny"]), False)
        for experiment, others, other_name in (("demo-tiny", real, "real SDSS"), ("weak", real, "real SDSS"),
                                               ("sdss", rendered, "rendered demo"),
                                               ("sdss6", rendered, "rendered demo")):
            measure(root, experiment, runs[experiment], others, other_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
