"""Ensembles and boosting of vote-fraction runs: weights by inverse validation error computed again from the
members' files, the combined answers, a regressor per answer, and fractions that stay fractions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.analysis.boosting import as_fractions, boost_regressors
from galaxy_tui.analysis.comparison import compared
from galaxy_tui.analysis.ensemble import build_ensemble
from galaxy_tui.atomic import read_json
from galaxy_tui.data.synthetic import SYNTHETIC_TREE
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import RunInfo, find_runs, launch, run_info
from workspace_fixture import tiny_workspace, wait_final

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_fraction_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunInfo]]:
    root = tmp_path_factory.mktemp("fraction-ensembles")
    registry = tiny_workspace(root, epochs=2, count=400, extra={"task": "vote-fractions"})
    update_registry(registry.path, lambda raw: raw["experiments"].update(
        wide={**raw["experiments"]["tiny"], "model": "galaxy10-cnn"}))
    registry = load_registry(registry.path)
    runs = [wait_final(launch(registry, name)) for name in ("tiny", "wide")]
    assert all(run.state == "finished" for run in runs), [(run.dir / "worker.log").read_text() for run in runs]
    return root, runs


def answers(run: RunInfo, name: str, kind: str) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(run.dir / "results" / name, dtype={"id": str}).sort_values("id").reset_index(drop=True)
    return frame, frame[[c for c in frame.columns if c.startswith(f"{kind}_")]].to_numpy()


def known_rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    known = np.isfinite(truth)
    return float(np.sqrt(np.mean((predicted[known] - truth[known]) ** 2)))


def test_a_fraction_run_saves_its_validation_answers(two_fraction_runs) -> None:  # noqa: ANN001
    _, (a, _) = two_fraction_runs
    metrics = read_json(a.dir / "results" / "metrics.json")
    val, predicted = answers(a, "val_predictions.csv", "pred")
    split = pd.read_csv(a.dir / "split.csv", dtype={"id": str})
    assert set(val["id"]) == set(split["id"][split["split"] == "val"])
    assert predicted.shape[1] == len(metrics["outputs"]) == SYNTHETIC_TREE.outputs
    assert metrics["best_val_rmse"] == pytest.approx(known_rmse(predicted, answers(a, "val_predictions.csv",
                                                                                   "true")[1]), abs=2e-5)
    assert len(metrics["baseline"]["answers"]) == len(metrics["outputs"])


@pytest.mark.parametrize("scheme", ["equal", "inverse-val-rmse", "inverse-val-mae"])
def test_a_fraction_ensemble_equals_the_weighted_mean_of_its_members_answers(two_fraction_runs,  # noqa: ANN001
                                                                            scheme: str) -> None:
    root, (a, b) = two_fraction_runs
    built = build_ensemble(root / "runs", [a, b], scheme)
    metrics = read_json(built.dir / "results" / "metrics.json")
    _, truth = answers(a, "val_predictions.csv", "true")
    (_, pa), (_, pb) = answers(a, "val_predictions.csv", "pred"), answers(b, "val_predictions.csv", "pred")
    if scheme == "equal":
        raw = np.array([1.0, 1.0])
    elif scheme == "inverse-val-rmse":
        raw = np.array([1 / known_rmse(p, truth) for p in (pa, pb)])
    else:
        known = np.isfinite(truth)
        raw = np.array([1 / np.abs(p[known] - truth[known]).mean() for p in (pa, pb)])
    weights = raw / raw.sum()
    assert metrics["ensemble"]["weights"] == pytest.approx(weights.tolist(), abs=1e-6)
    _, test_truth = answers(a, "predictions.csv", "true")
    (_, ta), (_, tb) = answers(a, "predictions.csv", "pred"), answers(b, "predictions.csv", "pred")
    combined = weights[0] * ta + weights[1] * tb
    _, ours = answers(built, "predictions.csv", "pred")
    np.testing.assert_allclose(ours, combined, atol=1e-5)
    assert metrics["rmse"] == pytest.approx(known_rmse(combined, test_truth), abs=1e-5)
    assert metrics["best_val_rmse"] == pytest.approx(known_rmse(weights[0] * pa + weights[1] * pb, truth), abs=1e-5)
    assert metrics["baseline"]["answers"] == read_json(a.dir / "results" / "metrics.json")["baseline"]["answers"]
    assert metrics["derived"]["classes"][-1] == "unsure"  # the rule applied to the combined answers
    info = run_info(built.dir)
    assert info.state == "finished" and info.metric == "val_rmse" and info.best_text.endswith("↓")
    assert compared(built).kind == "ensemble" and compared(built).comparable == compared(a).comparable
    assert len(list((built.dir / "results" / "residuals").glob("*.png"))) == 4


def test_a_fraction_ensemble_refuses_weights_by_accuracy(two_fraction_runs) -> None:  # noqa: ANN001
    root, (a, b) = two_fraction_runs
    before = set((root / "runs").iterdir())
    with pytest.raises(GalaxyError, match="vote-fraction runs have no accuracy; use inverse-val-rmse"):
        build_ensemble(root / "runs", [a, b], "val-accuracy")
    assert set((root / "runs").iterdir()) == before  # no half-built folder is left


def test_boosting_a_fraction_run_fits_a_regressor_per_answer(two_fraction_runs) -> None:  # noqa: ANN001
    root, (a, _) = two_fraction_runs
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "boost", a.id],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr + (a.dir / "worker.log").read_text()[-2000:]
    boosted = [run for run in find_runs(load_registry(root / "experiments.toml")) if run.id.startswith("boosted-")]
    assert len(boosted) == 1 and boosted[0].state == "finished" and boosted[0].metric == "val_rmse"
    metrics = read_json(boosted[0].dir / "results" / "metrics.json")
    assert len(metrics["boosted"]["trees"]) == len(metrics["outputs"])
    _, truth = answers(boosted[0], "predictions.csv", "true")
    _, predicted = answers(boosted[0], "predictions.csv", "pred")
    assert metrics["rmse"] == pytest.approx(known_rmse(predicted, truth), abs=2e-5)
    for start, end in SYNTHETIC_TREE.slices:  # each question's answers are fractions summing to 1
        np.testing.assert_allclose(predicted[:, start:end].sum(1), 1.0, atol=1e-5)
    assert boosted[0].best_metric == pytest.approx(metrics["best_val_rmse"], abs=1e-5)


def test_a_regressor_per_answer_stops_where_validation_is_best_and_skips_unknown_answers() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, 5))
    y = np.stack([1 / (1 + np.exp(-x[:, 0])), 1 / (1 + np.exp(x[:, 0])), np.full(400, np.nan)], axis=1)
    y[::3, 0] = np.nan  # an answer the catalogue lacks for some galaxies
    boosted = boost_regressors((x[:250], y[:250]), (x[250:320], y[250:320]), x[320:])
    assert boosted.trees[2] == 0 and (boosted.test[:, 2] == 0).all()  # no galaxy has it: nothing was fitted
    assert 1 <= boosted.trees[0] <= 200 and known_rmse(boosted.test[:, :2], y[320:, :2]) < 0.08
    from sklearn.ensemble import HistGradientBoostingRegressor  # the stage chosen is the validation minimum
    known = np.isfinite(y[:250, 0])
    reference = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.1, early_stopping=False,
                                              random_state=0).fit(x[:250][known], y[:250][known, 0])
    val_known = np.isfinite(y[250:320, 0])
    errors = [np.mean((p[val_known] - y[250:320][val_known, 0]) ** 2) for p in reference.staged_predict(x[250:320])]
    assert boosted.trees[0] == 1 + int(np.argmin(errors))


def test_regressed_answers_become_fractions_again() -> None:
    raw = np.array([[0.7, 0.5, -0.1, 1.4], [0.0, 0.0, 0.2, 0.2]])
    fractions = as_fractions(raw, [(0, 2), (2, 4)], cumulative=False)
    np.testing.assert_allclose(fractions, [[0.7 / 1.2, 0.5 / 1.2, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(as_fractions(raw, [(0, 2), (2, 4)], cumulative=True), np.clip(raw, 0, 1))


def test_show_names_what_a_fraction_ensemble_was_made_of(two_fraction_runs) -> None:  # noqa: ANN001
    root, (a, b) = two_fraction_runs
    built = build_ensemble(root / "runs", [a, b], "equal")
    shown = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "show", built.id],
                           capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "ensemble of 2, equal weights" in shown.stdout and "epoch None" not in shown.stdout
