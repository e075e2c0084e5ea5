"""A finished run folder is enough on its own: copied alone to another machine's workspace, with its dataset
moved away, it can be shown, predicted on image files, exported and served — a classification run and a
vote-fraction run (whose decision tree is frozen with the run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomli_w

from galaxy_tui.cli import main
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import launch
from trained_runs import REALDATA, finished, needs_realdata

pytestmark = [pytest.mark.slow, needs_realdata]


def trained_alone(tmp_path: Path, dataset: dict, experiment: dict) -> tuple[Path, str]:
    """Train in one workspace, copy the run folder alone into another, and move the dataset away."""
    home = tmp_path / "home"
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"}, "datasets": {"d": dataset},
           "experiments": {"e": {"dataset": "d", "model": "tiny-cnn", "image_size": 32, "epochs": 1,
                                 "micro_batch": 16, "effective_batch": 16, "mistakes": 2, **experiment}}}
    (home / "experiments.toml").write_text(tomli_w.dumps(raw))
    run = finished(launch(load_registry(home / "experiments.toml"), "e"))
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run.dir, elsewhere / "runs" / run.id)
    shutil.move(home, tmp_path / "moved-away")  # the dataset, its cache and the registry are gone
    return elsewhere, run.id


def cli(capsys: pytest.CaptureFixture[str], workspace: Path, *argv: str) -> str:
    code = main(["--workspace", str(workspace), *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def serves(workspace: Path, run_id: str) -> dict:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from galaxy_tui.inference.servable import load_run
    from galaxy_tui.serve.http_app import create_app
    jpeg = sorted(REALDATA.glob("*/*.jpeg"))[0]
    with TestClient(create_app(load_run(workspace / "runs" / run_id))) as client:
        answer = client.post("/classify", files=[("file", (jpeg.name, jpeg.read_bytes(), "image/jpeg"))])
    assert answer.status_code == 200, answer.text
    return answer.json()["results"][0]


def exercise(capsys: pytest.CaptureFixture[str], workspace: Path, run_id: str, tmp_path: Path) -> dict:
    assert run_id in cli(capsys, workspace, "show", run_id)
    cli(capsys, workspace, "predict", run_id, str(REALDATA / "0_elliptical"), "--out", str(tmp_path / "p.csv"))
    assert len((tmp_path / "p.csv").read_text().splitlines()) > 5
    cli(capsys, workspace, "export", run_id, "--out", str(tmp_path / "m.pt"), "--check",
        *map(str, sorted(REALDATA.glob("*/*.jpeg"))[:2]))
    assert (tmp_path / "m.pt").exists()
    return serves(workspace, run_id)


def test_a_classification_run_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REALDATA, tmp_path / "home" / "gz1", ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    workspace, run_id = trained_alone(tmp_path, {"kind": "image-folder", "path": "gz1"}, {})
    result = exercise(capsys, workspace, run_id, tmp_path)
    assert result["predicted"] in result["probabilities"]


def kaggle_catalogue(folder: Path) -> dict:
    """The real SDSS JPEGs as a Kaggle-challenge dataset: training_solutions_rev1.csv with cumulative answers
    (drawn at random, consistent down the tree) and images_training_rev1/<GalaxyID>.jpg."""
    import numpy as np
    import pandas as pd

    from galaxy_tui.data.kaggle_gz2 import TARGET_COLUMNS
    images = folder / "images_training_rev1"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for number, jpeg in enumerate(sorted(REALDATA.glob("*/*.jpeg"))):
        galaxy = 100000 + number
        shutil.copy(jpeg, images / f"{galaxy}.jpg")
        q1 = rng.dirichlet((2, 2, 0.3))
        edge, spiral = rng.uniform(0, 1, 2)
        values = dict.fromkeys(TARGET_COLUMNS, 0.0)
        values.update({"Class1.1": q1[0], "Class1.2": q1[1], "Class1.3": q1[2], "Class2.1": q1[1] * edge,
                       "Class2.2": q1[1] * (1 - edge), "Class4.1": q1[1] * (1 - edge) * spiral,
                       "Class4.2": q1[1] * (1 - edge) * (1 - spiral)})
        rows.append({"GalaxyID": galaxy, **values})
    pd.DataFrame(rows).to_csv(folder / "training_solutions_rev1.csv", index=False)
    return {"kind": "kaggle-gz2", "solutions": "kaggle/training_solutions_rev1.csv",
            "images": "kaggle/images_training_rev1"}


def test_a_vote_fraction_run_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = kaggle_catalogue(tmp_path / "home" / "kaggle")
    workspace, run_id = trained_alone(tmp_path, dataset, {"task": "vote-fractions", "questions": ["Q1", "Q2"]})
    result = exercise(capsys, workspace, run_id, tmp_path)
    assert sorted(result["fractions"]) == ["Class1.1", "Class1.2", "Class1.3", "Class2.1", "Class2.2"]
