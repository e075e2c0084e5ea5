"""Vote-fraction regression: the decision trees, the task's losses and outputs, the registry's rules, and
runs on the demo, on Kaggle-format files of real SDSS galaxies, and on a Hart16-shaped table with counts."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch
from rich.console import Console
from scipy.special import gammaln

from conftest import REALDATA, write_jpeg
from galaxy_tui.data.gz2 import load_gz2_hart16
from galaxy_tui.data.splits import experiment_tree
from galaxy_tui.data.synthetic import SYNTHETIC_TREE, load_synthetic
from galaxy_tui.data.vote_tree import HART16_QUESTIONS, KAGGLE_TREE, VoteTree
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events
from galaxy_tui.registry import Experiment, load_registry, update_registry
from galaxy_tui.report import print_report
from galaxy_tui.runs import launch, run_info, stop_run
from galaxy_tui.train.tasks import VoteFractionTask
from workspace_fixture import rank_lines, tiny_workspace, wait_final, wait_for


def sum_violations(tree: VoteTree, outputs: np.ndarray) -> float:
    """The largest breach of the challenge's constraints: a question's answers sum to the value of the
    answer that leads to it (1 for a question asked of everyone)."""
    worst = 0.0
    for question, (start, end) in zip(tree.questions, tree.slices):
        parent = tree.parent_output(question)
        expected = np.ones(len(outputs)) if parent is None else outputs[:, parent]
        worst = max(worst, float(np.abs(outputs[:, start:end].sum(1) - expected).max()))
    return worst


def test_kaggle_outputs_obey_every_sum_constraint_by_construction() -> None:
    task = VoteFractionTask(KAGGLE_TREE, "mse")
    outputs = task.predictions(torch.randn(64, 37) * 4).numpy()
    assert sum_violations(KAGGLE_TREE, outputs) < 1e-5
    assert (outputs >= 0).all() and (outputs <= 1).all()


def test_a_cumulative_tree_keeps_the_questions_that_lead_to_a_chosen_one() -> None:
    with pytest.raises(GalaxyError, match="leaves out Q2, Q1.*add Q2, Q1 to questions"):
        KAGGLE_TREE.select(["Q4"], "here")
    with pytest.raises(GalaxyError, match="'Q12'.*its questions: Q1, Q2"):
        KAGGLE_TREE.select(["Q1", "Q12"], "here")
    assert [q.key for q in KAGGLE_TREE.select(["Q1", "Q2", "Q4"], "here").questions] == ["Q1", "Q2", "Q4"]
    alone = SYNTHETIC_TREE.select(["spiral"], "here")  # per-question fractions stand on their own
    assert alone.questions[0].parent is None and alone.outputs == 2


def test_the_losses_match_an_independent_computation() -> None:
    tree = SYNTHETIC_TREE.select(["smooth_or_features", "edge_on"], "here")
    logits = torch.tensor([[0.3, -1.0, 0.5, 2.0, -0.4], [1.5, 0.2, -2.0, -0.3, 0.9]])
    fractions = np.array([[0.2, 0.7, 0.1, 0.9, 0.1], [0.8, 0.15, 0.05, 0.3, 0.7]], dtype=np.float32)
    counts = np.array([[4, 14, 2, 12, 2], [32, 6, 2, 1, 4]], dtype=np.float32)
    targets = torch.from_numpy(np.concatenate([fractions, counts], 1))

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    z = logits.numpy().astype(np.float64)
    p1, p2 = softmax(z[:, :3]), softmax(z[:, 3:])
    mse = ((np.concatenate([p1, p2], 1) - fractions) ** 2).mean(1).sum()
    assert VoteFractionTask(tree, "mse").loss_sum(logits, targets).item() == pytest.approx(mse, rel=1e-5)
    reach = fractions[:, 1]  # edge-on is asked of the galaxies called "features"
    ce = (-(fractions[:, :3] * np.log(p1)).sum(1) - reach * (fractions[:, 3:] * np.log(p2)).sum(1)).sum()
    assert VoteFractionTask(tree, "question-ce").loss_sum(logits, targets).item() == pytest.approx(ce, rel=1e-5)
    alpha = 1 + 99 / (1 + np.exp(-z))
    nll = 0.0
    for s, e in ((0, 3), (3, 5)):
        k, a = counts[:, s:e].astype(np.float64), alpha[:, s:e]
        n = k.sum(1)
        nll -= (gammaln(n + 1) + gammaln(a.sum(1)) - gammaln(n + a.sum(1))
                + (gammaln(k + a) - gammaln(a) - gammaln(k + 1)).sum(1)).sum()
    dm = VoteFractionTask(tree, "dirichlet-multinomial")
    assert dm.loss_sum(logits, targets).item() == pytest.approx(nll, rel=1e-4)
    predicted = dm.predictions(logits).numpy()  # the Dirichlet's means
    assert np.allclose(predicted[:, :3], alpha[:, :3] / alpha[:, :3].sum(1, keepdims=True), atol=1e-6)


def test_a_missing_answer_is_left_out_of_the_loss_and_the_score() -> None:
    task = VoteFractionTask(SYNTHETIC_TREE.select(["spiral"], "here"), "mse")
    logits = torch.zeros(2, 2)  # predicts 0.5, 0.5
    targets = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")]])
    assert task.loss_sum(logits, targets).item() == pytest.approx(0.25)
    assert task.score(np.full((2, 2), 0.5), targets.numpy()) == pytest.approx(0.5)


@pytest.mark.parametrize("extra, kind, message", [
    ({"task": "vote-fractions"}, "galaxy10-h5", "needs volunteers' vote fractions"),
    ({"task": "vote-fractions", "loss": "dirichlet-multinomial"}, "kaggle-gz2", "has fractions only"),
    ({"task": "vote-fractions", "sampler": "weighted"}, "synthetic", "balances classes"),
    ({"questions": ["Q1"]}, "synthetic", "applies to task"),
    ({"task": "vote-fractions", "loss": "cross-entropy"}, "synthetic", "not one of: mse, question-ce"),
])
def test_the_registry_refuses_what_cannot_train(tmp_path: Path, extra: dict, kind: str, message: str) -> None:
    dataset = {"kind": kind, **({"path": "x.h5"} if kind == "galaxy10-h5" else {}),
               **({"solutions": "s.csv", "images": "i"} if kind == "kaggle-gz2" else {})}
    path = tmp_path / "experiments.toml"
    path.write_text(tomli_w.dumps({"datasets": {"d": dataset}, "experiments": {"e": {"dataset": "d", **extra}}}))
    with pytest.raises(GalaxyError, match=message):
        load_registry(path)


def hart16_catalogue(folder: Path, count: int, with_counts: bool = True) -> dict[str, Path]:
    """A Hart16-shaped table: the first four questions' answers in every fraction family, with their
    counts (or without), the filename mapping and small JPEGs."""
    rng = np.random.default_rng(5)
    rows = []
    for objid in range(count):
        total = int(rng.integers(20, 60))
        row: dict = {"dr7objid": 587722981741363200 + objid, "total_classifications": total}
        reach: dict[str, float] = {}
        shares: dict[str, np.ndarray] = {}
        for key, _, answers, parent in HART16_QUESTIONS[:4]:
            shares[key] = rng.dirichlet(np.ones(len(answers)))
            reach[key] = 1.0 if parent is None else reach[parent[0]] * shares[parent[0]][parent[1]]
            for answer, share in zip(answers, shares[key]):
                for family in ("fraction", "weighted_fraction", "debiased"):
                    row[f"{key}_{answer}_{family}"] = round(float(share), 4)
                if with_counts:
                    row[f"{key}_{answer}_count"] = int(round(share * total * reach[key]))
        rows.append(row)
    catalog, mapping, images = folder / "gz2_hart16.csv", folder / "gz2_filename_mapping.csv", folder / "images"
    pd.DataFrame(rows).to_csv(catalog, index=False)
    pd.DataFrame({"objid": [r["dr7objid"] for r in rows], "asset_id": range(count)}).to_csv(mapping, index=False)
    images.mkdir()
    for asset in range(count):
        write_jpeg(images / f"{asset}.jpg", asset, 32)
    return {"catalog": catalog, "mapping": mapping, "images": images}


def test_hart16_offers_the_questions_its_catalogue_has_with_their_counts(tmp_path: Path) -> None:
    files = hart16_catalogue(tmp_path, 6)
    dataset = load_gz2_hart16("gz2", **files)
    assert dataset.tree is not None and [q.key for q in dataset.tree.questions] == \
        ["t01_smooth_or_features", "t02_edgeon", "t03_bar", "t04_spiral"]
    assert dataset.tree.has_counts and dataset.tree.questions[3].parent == ("t02_edgeon", 1)
    fractions, counts = dataset.answers(dataset.frame, dataset.tree)
    table = pd.read_csv(files["catalog"])
    assert np.allclose(fractions[:, 0], table["t01_smooth_or_features_a01_smooth_debiased"])
    assert counts is not None and counts[:, 0].tolist() == table["t01_smooth_or_features_a01_smooth_count"].tolist()
    exp = Experiment("e", "gz2", task="vote-fractions", loss="dirichlet-multinomial", questions=("t06_odd",))
    with pytest.raises(GalaxyError, match="'t06_odd', which this dataset does not have"):
        experiment_tree(dataset, exp)


def test_the_demo_answers_follow_what_its_images_show() -> None:
    dataset = load_synthetic("demo", 600, 32, 0)
    fractions, counts = dataset.answers(dataset.frame, SYNTHETIC_TREE)
    kinds = dataset.frame["true_type"].to_numpy()
    rounded = SYNTHETIC_TREE.slices[SYNTHETIC_TREE.index("rounded")]
    # volunteers who reach "how rounded" call edge-on disks cigar-shaped, ellipticals mostly not
    cigar = fractions[:, rounded[0] + 2]
    assert cigar[kinds == "edge_on"].mean() > cigar[kinds == "elliptical"].mean() + 0.2
    # a question's counts add up to the volunteers who reached it
    volunteers = dataset.frame["total_classifications"].to_numpy()[:, None]
    reach = SYNTHETIC_TREE.reach(fractions.astype(np.float64)) * volunteers
    for i, (start, end) in enumerate(SYNTHETIC_TREE.slices):
        assert np.abs(counts[:, start:end].sum(1) - reach[:, i]).max() <= (end - start) / 2 + 1e-6


# ---------------------------------------------------------------- whole runs, as a user starts them

def fraction_rmse_from_csv(predictions: pd.DataFrame) -> float:
    truth = predictions[[c for c in predictions if c.startswith("true_")]].to_numpy()
    predicted = predictions[["pred_" + c[5:] for c in predictions if c.startswith("true_")]].to_numpy()
    known = np.isfinite(truth)
    return float(np.sqrt(np.mean((truth[known] - predicted[known]) ** 2)))


@pytest.fixture(scope="module")
def demo_fraction_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fractions")
    registry = tiny_workspace(root, epochs=2, count=400, extra={"task": "vote-fractions", "mistakes": 6})
    info = wait_final(launch(registry, "tiny"))
    assert info.state == "finished", (info.dir / "worker.log").read_text()
    return info.dir


def test_a_demo_fraction_run_reports_rmse_that_predictions_csv_reproduces(demo_fraction_run: Path) -> None:
    results = demo_fraction_run / "results"
    metrics = json.loads((results / "metrics.json").read_text())
    predictions = pd.read_csv(results / "predictions.csv", dtype={"id": str})
    assert metrics["task"] == "vote-fractions" and metrics["galaxies"] == len(predictions)
    assert metrics["rmse"] == pytest.approx(fraction_rmse_from_csv(predictions), abs=2e-6)
    assert [q["key"] for q in metrics["questions"]] == [q.key for q in SYNTHETIC_TREE.questions]
    assert metrics["baseline"]["rmse"] > 0 and all(q["baseline_rmse"] is not None for q in metrics["questions"])
    derived = metrics["derived"]
    assert derived["classes"][-1] == "unsure" and np.sum(derived["confusion"]) == len(predictions)
    listing = pd.read_csv(results / "residuals" / "residuals.csv")
    assert len(listing) == 6 and all((results / "residuals" / f).exists() for f in listing["file"])
    worst = predictions.sort_values("rmse", ascending=False)["id"].head(6).tolist()
    assert listing["id"].astype(str).tolist() == worst
    info = run_info(demo_fraction_run)  # lower is better, and the runs list says so
    assert info.metric == "val_rmse" and info.best_text.endswith("↓")
    assert info.best_metric == pytest.approx(metrics["best_val_rmse"], abs=1e-5)
    epochs = [json.loads(line) for line in (demo_fraction_run / "events.jsonl").read_text().splitlines()
              if '"type":"epoch"' in line]
    assert min(e["val_rmse"] for e in epochs) == pytest.approx(info.best_metric, abs=1e-5)


def test_show_prints_the_fraction_results(demo_fraction_run: Path) -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    print_report(run_info(demo_fraction_run), console, answer="spiral")
    text = console.file.getvalue()
    for expected in ("test RMSE", "mean baseline", "RMSE per question", "how many arms",
                     "spiral: predicted vs true", "residuals", "rows volunteers, columns model"):
        assert expected in text
    with pytest.raises(GalaxyError, match="this run predicts smooth, disk"):
        print_report(run_info(demo_fraction_run), console, answer="Class1.1")


def kaggle_from_realdata(folder: Path) -> dict[str, Path]:
    """The challenge's files for the 120 real SDSS galaxies: <GalaxyID>.jpg and cumulative targets that
    follow their Galaxy Zoo 1 class (with some spread), written like training_solutions_rev1.csv."""
    labels = pd.read_csv(REALDATA / "labels.csv")
    images = folder / "images_training_rev1"
    images.mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for i, row in labels.iterrows():
        galaxy_id = 100000 + int(i)
        shutil.copy(REALDATA / row["file"], images / f"{galaxy_id}.jpg")
        q1 = {0: (0.85, 0.12, 0.03), 3: (0.1, 0.87, 0.03), 4: (0.3, 0.2, 0.5)}.get(int(row["CLASS"]), (0.1, 0.85, 0.05))
        q1 = rng.dirichlet(np.array(q1) * 30)
        edge = 0.9 if row["CLASS"] == 3 else 0.08
        spiral = 0.85 if row["CLASS"] in (1, 2) else 0.2
        values = {}
        per_question = {q.key: rng.dirichlet(np.ones(len(q.answers)) * 3) for q in KAGGLE_TREE.questions}
        per_question["Q1"] = q1
        per_question["Q2"] = np.array([edge, 1 - edge])
        per_question["Q4"] = np.array([spiral, 1 - spiral])
        cumulative: dict[str, np.ndarray] = {}
        for question in KAGGLE_TREE.questions:
            parent = question.parent
            scale = 1.0 if parent is None else cumulative[parent[0]][parent[1]]
            cumulative[question.key] = per_question[question.key] * scale
            values.update(dict(zip(question.columns, np.round(cumulative[question.key], 6))))
        rows.append({"GalaxyID": galaxy_id, **values})
    solutions = folder / "training_solutions_rev1.csv"
    pd.DataFrame(rows).to_csv(solutions, index=False)
    return {"solutions": solutions, "images": images}


def write_workspace(root: Path, dataset: dict, experiment: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "experiments.toml").write_text(tomli_w.dumps({
        "workspace": {"runs_dir": "runs", "cache_dir": "cache"}, "datasets": {"d": dataset},
        "experiments": {"e": {"dataset": "d", "task": "vote-fractions", "model": "tiny-cnn", "image_size": 32,
                              "epochs": 1, "micro_batch": 16, "effective_batch": 32, "mistakes": 4,
                              "optimizer": {"name": "adamw", "lr": 3e-3}, **experiment}}}))


@pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata is not on this machine")
def test_kaggle_files_of_real_galaxies_train_and_keep_the_sum_constraints(tmp_path: Path) -> None:
    files = kaggle_from_realdata(tmp_path)
    write_workspace(tmp_path / "ws", {"kind": "kaggle-gz2", **{k: str(v) for k, v in files.items()}},
                    {"loss": "question-ce", "labels": {"threshold": 0.6}})
    info = wait_final(launch(load_registry(tmp_path / "ws" / "experiments.toml"), "e"))
    assert info.state == "finished", (info.dir / "worker.log").read_text()
    predictions = pd.read_csv(info.dir / "results" / "predictions.csv")
    outputs = predictions[[f"pred_{c}" for c in KAGGLE_TREE.columns]].to_numpy()
    assert outputs.shape[1] == 37 and sum_violations(KAGGLE_TREE, outputs) <= 1e-5
    metrics = json.loads((info.dir / "results" / "metrics.json").read_text())
    assert metrics["rmse"] == pytest.approx(fraction_rmse_from_csv(predictions), abs=2e-6)
    assert metrics["cumulative"] and len(metrics["questions"]) == 11


def test_a_hart16_table_with_counts_trains_with_the_dirichlet_multinomial_loss(tmp_path: Path) -> None:
    files = hart16_catalogue(tmp_path, 160)
    write_workspace(tmp_path / "ws", {"kind": "gz2-hart16", **{k: str(v) for k, v in files.items()}},
                    {"loss": "dirichlet-multinomial", "questions": ["t01_smooth_or_features", "t02_edgeon"]})
    info = wait_final(launch(load_registry(tmp_path / "ws" / "experiments.toml"), "e"))
    assert info.state == "finished", (info.dir / "worker.log").read_text()
    metrics = json.loads((info.dir / "results" / "metrics.json").read_text())
    assert metrics["loss_function"] == "dirichlet-multinomial" and len(metrics["outputs"]) == 5
    log = (info.dir / "worker.log").read_text()
    assert "val_rmse=" in log


def test_the_dirichlet_loss_without_counts_is_refused_before_a_run_starts(tmp_path: Path) -> None:
    files = hart16_catalogue(tmp_path, 20, with_counts=False)
    write_workspace(tmp_path / "ws", {"kind": "gz2-hart16", **{k: str(v) for k, v in files.items()}},
                    {"loss": "dirichlet-multinomial"})
    with pytest.raises(GalaxyError, match="no _count columns for t01_smooth_or_features.*use loss = \"mse\""):
        launch(load_registry(tmp_path / "ws" / "experiments.toml"), "e")
    runs = tmp_path / "ws" / "runs"
    assert not runs.exists() or not [run for run in runs.iterdir() if not run.name.startswith(".")]


async def test_the_results_pane_shows_a_fraction_run(demo_fraction_run: Path) -> None:
    from textual.widgets import TabbedContent

    from galaxy_tui.app.gallery import GalaxyView
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.app.panes.mistakes_grid import MistakeCell
    from pilot_helpers import NoGpu, screen_text, text_of, until
    app = GalaxyApp(demo_fraction_run.parent.parent, telemetry=NoGpu())
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: "test RMSE" in text_of(app, "#results-summary"))
        assert "mean baseline" in text_of(app, "#results-summary")
        await until(pilot, lambda: "RMSE per question" in text_of(app, "#results-per-class"))  # after the headline
        assert "rows volunteers, columns model" in text_of(app, "#results-confusion")
        await pilot.press("a")
        await until(pilot, lambda: "answer smooth (1 of 12," in text_of(app, "#answers-heading"))
        assert app.query_one("#results-tabs", TabbedContent).active == "tab-answers"
        await until(pilot, lambda: "smooth: predicted vs true" in screen_text(app)
                    and "RMSE of a galaxy's answers" in screen_text(app))
        await pilot.press("a")
        await until(pilot, lambda: "answer disk (2 of 12," in text_of(app, "#answers-heading"))
        await pilot.press("A", "A")
        await until(pilot, lambda: "answer rounded_cigar (12 of 12," in text_of(app, "#answers-heading"))
        await pilot.press("m")
        await until(pilot, lambda: len(app.query(MistakeCell)) == 6)
        assert "largest residuals" in screen_text(app)
        cell = list(app.query(MistakeCell))[0]
        assert "rmse" in cell.caption and "→" in cell.details
        cell.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView))
        assert cell.row["id"] in screen_text(app)


@pytest.mark.usefixtures("cpu_ranks")
def test_a_two_rank_fraction_run_stopped_and_resumed_keeps_the_lowest_rmse_as_best(tmp_path: Path) -> None:
    """The task through the lifecycle: devices = 2 (torchrun, gloo on the CPU), stopped after two epochs, resumed
    to finish. Lower RMSE is better across both attempts: the best checkpoint, best_val_rmse and the ranks'
    decisions all follow the minimum, and the ranks decide together."""
    registry = tiny_workspace(tmp_path, epochs=40, extra={"task": "vote-fractions", "devices": 2,
                                                          "max_steps_per_epoch": 4})
    run = launch(registry, "tiny")
    epochs = lambda: [e for e in read_events(run.dir / "events.jsonl") if e["type"] == "epoch"]  # noqa: E731
    wait_for(lambda: len(epochs()) >= 2, timeout=240)
    stop_run(registry, run.id)
    stopped = wait_final(run)
    assert stopped.state == "stopped", (run.dir / "worker.log").read_text()[-3000:]
    stopped_at = max(e["epoch"] for e in epochs())
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=stopped_at + 2))
    resumed = wait_final(launch(load_registry(registry.path), "tiny", "resume"), timeout=240)
    assert resumed.state == "finished" and resumed.attempt == 2, (run.dir / "worker.log").read_text()[-3000:]

    events = read_events(run.dir / "events.jsonl")
    assert [e["world"] for e in events if e["type"] == "started"] == [2, 2]
    scores = {e["epoch"]: e["val_rmse"] for e in events if e["type"] == "epoch"}
    assert sorted(scores) == list(range(1, stopped_at + 3))  # no epoch lost or repeated across the stop
    best_epoch = min(scores, key=scores.get)
    metrics = json.loads((run.dir / "results" / "metrics.json").read_text())
    assert metrics["best_epoch"] == best_epoch
    assert metrics["best_val_rmse"] == pytest.approx(scores[best_epoch], abs=1e-5)
    assert run_info(run.dir).best_metric == pytest.approx(scores[best_epoch], abs=1e-5)
    best = torch.load(run.dir / "checkpoints" / "best.pt", weights_only=True, map_location="cpu")
    assert int(best["best_epoch"]) == best_epoch
    decisions = rank_lines(run.dir, "epoch")
    assert set(decisions) == {0, 1} and decisions[0] == decisions[1]
    improved = [line for line in decisions[0] if "improved=True" in line]
    running_best = np.minimum.accumulate([scores[e] for e in sorted(scores)])
    assert len(improved) == len(set(running_best.tolist()))  # improved exactly when the RMSE fell below the best
