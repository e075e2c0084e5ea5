"""Compare and combine: comparability groups, the three ensembles against an independent computation from
the members' prediction files, and what is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.analysis.comparison import comparable_groups, compared
from galaxy_tui.analysis.ensemble import build_ensemble
from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import RunInfo, find_runs, launch, run_info
from workspace_fixture import tiny_workspace, wait_final

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunInfo]]:
    """Two finished runs of different models on the same split, and one on another labelling."""
    root = tmp_path_factory.mktemp("ensembles")
    registry = tiny_workspace(root, epochs=2)
    update_registry(registry.path, lambda raw: raw["experiments"].update(
        wide={**raw["experiments"]["tiny"], "model": "galaxy10-cnn"},
        looser={**raw["experiments"]["tiny"], "labels": {"threshold": 0.6}}))
    registry = load_registry(registry.path)
    runs = [wait_final(launch(registry, name)) for name in ("tiny", "wide", "looser")]
    assert all(run.state == "finished" for run in runs), [(run.dir / "worker.log").read_text() for run in runs]
    return root, runs


def probabilities(run: RunInfo, name: str, classes: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(run.dir / "results" / name, dtype={"id": str}).sort_values("id").reset_index(drop=True)
    return frame, frame[[f"p_{c}" for c in classes]].to_numpy()


@pytest.mark.parametrize("scheme", ["equal", "val-accuracy", "inverse-val-mae"])
def test_an_ensemble_equals_the_weighted_mean_of_its_members_files(two_models, scheme: str) -> None:  # noqa: ANN001
    root, (a, b, _) = two_models
    built = build_ensemble(root / "runs", [a, b], scheme)
    metrics = read_json(built.dir / "results" / "metrics.json")
    classes = metrics["classes"]
    (val_a, pa), (_, pb) = probabilities(a, "val_predictions.csv", classes), \
        probabilities(b, "val_predictions.csv", classes)
    truth = val_a["true"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    if scheme == "equal":
        raw = np.array([1.0, 1.0])
    elif scheme == "val-accuracy":
        raw = np.array([(p.argmax(1) == truth).mean() for p in (pa, pb)])
    else:
        raw = np.array([1 / np.abs(p - np.eye(len(classes))[truth]).mean() for p in (pa, pb)])
    weights = raw / raw.sum()
    assert metrics["ensemble"]["weights"] == pytest.approx(weights.tolist(), abs=1e-6)
    (test_a, ta), (_, tb) = probabilities(a, "predictions.csv", classes), probabilities(b, "predictions.csv", classes)
    combined = weights[0] * ta + weights[1] * tb
    test_truth = test_a["true"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    assert metrics["accuracy"] == pytest.approx((combined.argmax(1) == test_truth).mean(), abs=1e-5)
    mine, ours = probabilities(built, "predictions.csv", classes)
    np.testing.assert_allclose(ours, combined, atol=2e-5)
    assert metrics["best_val_acc"] == pytest.approx(((weights[0] * pa + weights[1] * pb).argmax(1) == truth).mean(),
                                                    abs=1e-5)
    assert built.state == "finished" and built.id in {run.id for run in find_runs(load_registry(root /
                                                                                               "experiments.toml"))}
    assert (built.dir / "results" / "confusion.csv").exists() and metrics["calibration"] is not None
    assert metrics["threshold"] == 0.7  # the members' labelling, as the Compare tab shows it
    listed = compared(built)
    assert listed.kind == "ensemble" and listed.comparable == compared(a).comparable


def test_runs_of_another_labelling_are_another_group_and_cannot_join(two_models) -> None:  # noqa: ANN001
    root, (a, b, looser) = two_models
    groups = comparable_groups([compared(run) for run in (a, looser, b)])
    assert [[item.run for item in group] for group in groups] == [[a.id, b.id], [looser.id]]
    with pytest.raises(GalaxyError, match=f"{looser.id} cannot join {a.id}: labelling: threshold 0.6, not 0.7"):
        build_ensemble(root / "runs", [a, looser], "equal")
    with pytest.raises(GalaxyError, match="at least two different runs"):
        build_ensemble(root / "runs", [a, a], "equal")
    assert len(list((root / "runs").glob("ensemble-*"))) == len(
        [run for run in find_runs(load_registry(root / "experiments.toml")) if run.experiment == "ensemble"])


def test_compare_prints_groups_and_writes_the_csv(two_models) -> None:  # noqa: ANN001
    root, (a, b, looser) = two_models
    out = root / "compare.csv"
    shown = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "compare", a.id, b.id,
                            looser.id, "--csv", str(out)], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "80"}, check=True).stdout
    shown = " ".join(shown.split())  # the title wraps at 80 columns
    assert "group 2" in shown and "not comparable with group 1: labelling" in shown
    assert "left out for the width" in shown
    table = pd.read_csv(out)
    assert list(table["group"]) == [1, 1, 2] and table["parameters"].notna().all()
    # named for what they hold: the best epoch, the epochs trained (all attempts), the seconds of all attempts
    assert {"best_epoch", "epochs_trained", "train_seconds_all_attempts"} <= set(table.columns)
    assert "epochs" not in table.columns and (table["epochs_trained"] >= table["best_epoch"]).all()
    assert (table["test"] == [read_json(r.dir / "results" / "metrics.json")["accuracy"] for r in (a, b, looser)]).all()


async def test_the_results_pane_shows_an_ensemble_and_its_calibration(two_models) -> None:  # noqa: ANN001
    from textual.widgets import TabbedContent

    from galaxy_tui.app.main import GalaxyApp
    from pilot_helpers import NoGpu, screen_text, text_of, until
    root, (a, b, _) = two_models
    built = build_ensemble(root / "runs", [a, b], "val-accuracy")  # the newest run: Results opens on it
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: built.id in text_of(app, "#results-summary"))
        assert "ensemble of 2, val-accuracy weights" in text_of(app, "#results-summary")
        await until(pilot, lambda: "completeness" in text_of(app, "#results-per-class"))
        assert "vote threshold" not in text_of(app, "#results-thresholds")  # an ensemble measures none
        await pilot.press("a")
        tabs = app.query_one("#results-tabs", TabbedContent)
        await until(pilot, lambda: "expected calibration error" in text_of(app, "#answers-heading"))
        assert tabs.active == "tab-answers" and str(tabs.get_tab("tab-answers").label) == "Calibration"
        await until(pilot, lambda: "reliability" in screen_text(app) and "confidence of right" in screen_text(app))
        app.select_run(a.id)  # a member: trained on votes, it has the threshold curve
        await until(pilot, lambda: "accuracy by vote threshold" in text_of(app, "#results-thresholds"))
        await until(pilot, lambda: "a: accuracy by vote threshold" in  # the heading wraps (a long line)
                    " ".join(text_of(app, "#answers-heading").split()))
        await pilot.press("a")  # again: the same curve as a plot, and the count it rests on
        await until(pilot, lambda: "labelled at each vote threshold" in text_of(app, "#answers-heading"))
        await until(pilot, lambda: "galaxies labelled" in screen_text(app) and "trained at 0.7" in screen_text(app))
        await pilot.press("a")
        await until(pilot, lambda: "expected calibration error" in text_of(app, "#answers-heading"))


def test_evaluate_with_tta_reports_both_figures_in_a_new_attempt(two_models) -> None:  # noqa: ANN001
    root, (_, _, looser) = two_models
    before = read_json(looser.dir / "results" / "metrics.json")
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "evaluate", looser.id,
                           "--tta"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = read_json(looser.dir / "results" / "metrics.json")
    assert after["accuracy"] == pytest.approx(before["accuracy"]) and after["tta"]["views"] == 8
    assert after["seconds"] == before["seconds"]  # the training's duration, not the time since it started
    assert 0.0 <= after["tta"]["accuracy"] <= 1.0
    info = [run for run in find_runs(load_registry(root / "experiments.toml")) if run.id == looser.id][0]
    assert info.attempt == looser.attempt + 1 and info.state == "finished"
    shown = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "show", looser.id],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}, check=True).stdout
    assert f"8 flips and quarter turns): accuracy {after['tta']['accuracy']:.4f}" in shown
    again = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "evaluate", looser.id,
                            "--tta"], capture_output=True, text=True, timeout=300)  # measured: nothing to redo
    assert again.returncode == 0 and "already measured" in again.stdout and "--again" in again.stdout
    assert run_info(looser.dir).attempt == looser.attempt + 1  # no new attempt


async def test_marking_runs_and_pressing_e_builds_an_ensemble_in_the_runs_list(two_models) -> None:  # noqa: ANN001
    from textual.widgets import DataTable

    from galaxy_tui.app.dialogs import ChoiceDialog
    from galaxy_tui.app.main import GalaxyApp
    from pilot_helpers import NoGpu, until
    root, (a, b, _) = two_models
    before = {run.id for run in find_runs(load_registry(root / "experiments.toml"))}
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        table = app.query_one("#runs-table", DataTable)
        await until(pilot, lambda: table.row_count >= 3 and app.focused is table)
        for run in (a, b):
            table.move_cursor(row=table.get_row_index(run.id))
            await pilot.press("space")
        await until(pilot, lambda: set(app.store.marked) == {a.id, b.id})
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("m")  # 1 / val MAE
        await until(pilot, lambda: any(r.startswith("ensemble-") and r not in before for r in app.store.records),
                    timeout=60)
    built = [run for run in find_runs(load_registry(root / "experiments.toml")) if run.id not in before]
    assert len(built) == 1 and read_json(built[0].dir / "results" / "metrics.json")["ensemble"]["scheme"] == \
        "inverse-val-mae"


async def test_the_compare_tab_groups_runs_says_why_and_marks_runs_for_an_ensemble(two_models) -> None:  # noqa: ANN001
    from textual.widgets import DataTable

    from galaxy_tui.app.dialogs import ChoiceDialog
    from galaxy_tui.app.main import GalaxyApp
    from pilot_helpers import NoGpu, text_of, until
    root, (a, b, looser) = two_models
    before = {run.id for run in find_runs(load_registry(root / "experiments.toml"))}
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4", "c")
        table = app.query_one("#compare-table", DataTable)
        await until(pilot, lambda: table.row_count >= 3 and "comparable groups" in text_of(app, "#compare-groups"))

        def group(run_id: str) -> str:
            return str(table.get_row(run_id)[0])

        assert group(a.id) == group(b.id) != group(looser.id)
        groups = [str(table.get_row_at(k)[0]) for k in range(table.row_count)]
        assert groups == sorted(groups, key=lambda g: int(g[1:]))  # each group's rows together
        other = looser if group(a.id) == "G1" else a  # G1 is the group of the newest result
        table.move_cursor(row=table.get_row_index(other.id))
        await until(pilot, lambda: f"{group(other.id)} vs G1: labelling: threshold" in text_of(app, "#compare-groups"))
        for run in (a, b):
            table.move_cursor(row=table.get_row_index(run.id))
            await pilot.press("space")
        await until(pilot, lambda: set(app.store.marked) == {a.id, b.id})
        await until(pilot, lambda: str(table.get_row(a.id)[1]).startswith("● "))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("r")  # 1 / val RMSE
        await until(pilot, lambda: any(r.startswith("ensemble-") and r not in before for r in app.store.records),
                    timeout=60)
        new = next(r for r in app.store.records if r.startswith("ensemble-") and r not in before)
        await until(pilot, lambda: new in table.rows and group(new) == group(a.id))  # it joins its members' group
    assert read_json(root / "runs" / new / "results" / "metrics.json")["ensemble"]["scheme"] == "inverse-val-rmse"


def test_a_booster_picks_its_trees_on_validation_and_fills_absent_classes() -> None:
    from galaxy_tui.analysis.boosting import boost_classifier
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 8))

    def blobs(count: int, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.choice(classes, count)
        return centres[labels] + rng.normal(0, 1, (count, 8)), labels

    boosted = boost_classifier(blobs(300, (0, 1, 2)), blobs(100, (0, 1, 2)), blobs(100, (0, 1, 2))[0], 3)
    assert len(boosted.trees) == 1 and 1 <= boosted.trees[0] <= 200 and boosted.val.shape == (100, 3)
    np.testing.assert_allclose(boosted.test.sum(1), 1.0, atol=1e-9)
    only_two = boost_classifier(blobs(200, (0, 2)), blobs(50, (0, 1, 2)), blobs(50, (0, 1, 2))[0], 3)
    assert (only_two.test[:, 1] == 0).all()  # a class the training galaxies lack: never predicted, still a column


def test_boost_fits_on_the_run_s_features_and_saves_a_comparable_result(two_models) -> None:  # noqa: ANN001
    root, (a, _, _) = two_models
    before = (a.dir / "results" / "metrics.json").read_bytes()
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "boost", a.id],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr + (a.dir / "worker.log").read_text()[-2000:]
    split = pd.read_csv(a.dir / "split.csv", dtype={"id": str})
    for part in ("train", "val", "test"):
        features = np.load(a.dir / "features" / f"{part}.npy")
        ids = pd.read_csv(a.dir / "features" / f"{part}_ids.csv", dtype={"id": str})["id"]
        assert len(features) == len(ids) == int((split["split"] == part).sum()) and features.shape[1] == 128
        assert set(ids) == set(split["id"][split["split"] == part])
    assert (a.dir / "results" / "metrics.json").read_bytes() == before  # the network's own results untouched
    boosted = [run for run in find_runs(load_registry(root / "experiments.toml")) if run.id.startswith("boosted-")]
    assert len(boosted) == 1 and boosted[0].state == "finished"
    assert f"details: galaxy-tui show {boosted[0].id}" in done.stdout  # the boosted result, not the run it came from
    metrics = read_json(boosted[0].dir / "results" / "metrics.json")
    predictions = pd.read_csv(boosted[0].dir / "results" / "predictions.csv")
    assert metrics["accuracy"] == pytest.approx((predictions["true"] == predictions["predicted"]).mean(), abs=1e-5)
    assert metrics["boosted"]["run"] == a.id and len(metrics["boosted"]["trees"]) == 1 and metrics["threshold"] == 0.7
    listed = compared(boosted[0])
    assert listed.kind == "boosted" and listed.comparable == compared(a).comparable


def test_lightgbm_when_installed_picks_its_trees_on_validation() -> None:
    """LightGBM is an optional extra (the test extra installs it); without it the booster says what to do."""
    from galaxy_tui.analysis.boosting import boost_classifier
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (300, 6)), rng.integers(0, 3, 300)
    x[np.arange(300), y] += 3.0
    try:
        import lightgbm  # noqa: F401
    except (ImportError, OSError) as exc:
        with pytest.raises(GalaxyError, match="pip install 'galaxy-tui\\[boost\\]'"):
            boost_classifier((x[:200], y[:200]), (x[200:250], y[200:250]), x[250:], 3, "lightgbm")
        pytest.skip(f"LightGBM is not importable here ({exc}); the message was checked")
    boosted = boost_classifier((x[:200], y[:200]), (x[200:250], y[200:250]), x[250:], 3, "lightgbm")
    assert 1 <= boosted.trees[0] <= 200 and (boosted.test.argmax(1) == y[250:]).mean() > 0.8


def test_accuracy_against_the_vote_threshold_counts_only_galaxies_never_trained_on(two_models) -> None:  # noqa: ANN001
    """At the run's own threshold (0.7) the galaxies never trained on are exactly its validation and test
    galaxies: count and accuracy must equal what its two prediction files say."""
    _, (a, _, _) = two_models
    curve = {row["threshold"]: row for row in read_json(a.dir / "results" / "metrics.json")["thresholds"]}
    assert sorted(curve) == [round(0.5 + 0.05 * k, 2) for k in range(10)]
    counts = [curve[t]["galaxies"] for t in sorted(curve)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]  # surer galaxies are fewer
    held_out = pd.concat([pd.read_csv(a.dir / "results" / name) for name in ("val_predictions.csv",
                                                                              "predictions.csv")])
    assert curve[0.7]["galaxies"] == len(held_out)
    assert curve[0.7]["accuracy"] == pytest.approx((held_out["true"] == held_out["predicted"]).mean(), abs=1e-5)
