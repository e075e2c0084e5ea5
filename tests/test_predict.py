"""Using a trained run: `predict` on image files, folders and a dataset's galaxies (the same numbers as the
run's own evaluation), `export` to TorchScript and ONNX with parity on real galaxies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trained_runs import REALDATA, needs_realdata

pytestmark = pytest.mark.slow


def cli(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd or root,
                          env={**os.environ, "COLUMNS": "160"})


def probabilities(frame: pd.DataFrame, classes: list[str]) -> np.ndarray:
    return frame[[f"p_{c}" for c in classes]].to_numpy()


def test_predicting_a_dataset_gives_the_numbers_the_run_s_evaluation_gave(demo_run) -> None:  # noqa: ANN001
    """The same galaxies through `predict` (read from the catalogue, prepared by predict's own path) and
    through the run's evaluation (the training cache): the same probabilities, so the preprocessing agrees."""
    root, run = demo_run
    done = cli(root, "predict", run.id, "--dataset", "tiny", "--all", "--out", "all.csv", "--features")
    assert done.returncode == 0, done.stderr
    classes = json.loads((run.dir / "results" / "metrics.json").read_text())["classes"]
    ours = pd.read_csv(root / "all.csv", dtype={"id": str}).set_index("id")
    evaluated = pd.read_csv(run.dir / "results" / "predictions.csv", dtype={"id": str}).set_index("id")
    assert len(ours) == 400 and set(evaluated.index) <= set(ours.index)
    np.testing.assert_allclose(probabilities(ours.loc[evaluated.index], classes), probabilities(evaluated, classes),
                               atol=3e-5)
    assert (ours.loc[evaluated.index, "predicted"] == evaluated["predicted"]).all()
    ordinary = ~ours["unlike_training"]  # no calibrated figures are claimed for a galaxy unlike the training ones
    assert ordinary.mean() > 0.9
    np.testing.assert_allclose(ours.loc[ordinary, [f"pcal_{c}" for c in classes]].sum(1), 1.0, atol=1e-4)
    assert ours.loc[~ordinary, "calibrated_confidence"].isna().all()
    features = np.load(root / "all.features.npy")
    assert features.shape == (400, 128)
    assert "galaxies classified" in done.stdout and "predicted classes" in done.stdout


def test_unlabelled_classifies_exactly_the_galaxies_the_rule_dropped(demo_run) -> None:  # noqa: ANN001
    root, run = demo_run
    done = cli(root, "predict", run.id, "--dataset", "tiny", "--unlabelled", "--out", "dropped.csv")
    assert done.returncode == 0, done.stderr
    labelled = set(pd.read_csv(run.dir / "split.csv", dtype={"id": str})["id"])  # the rule kept these
    every = set(pd.read_csv(root / "all.csv", dtype={"id": str})["id"]) if (root / "all.csv").exists() else None
    dropped = pd.read_csv(root / "dropped.csv", dtype={"id": str})
    assert len(dropped) > 0 and not set(dropped["id"]) & labelled
    if every is not None:
        assert set(dropped["id"]) == every - labelled


def test_predict_reads_real_jpegs_in_folders_and_lists_what_it_skips(folder_run, tmp_path: Path) -> None:  # noqa: ANN001
    """Kaggle's layout (a flat folder of <GalaxyID>.jpg) beside a broken JPEG and a text file."""
    root, run = folder_run
    kaggle = tmp_path / "images_test_rev1"
    kaggle.mkdir()
    sources = sorted(REALDATA.glob("*/*.jp*g"))[:30]
    for number, source in enumerate(sources):
        shutil.copy(source, kaggle / f"{200000 + number}.jpg")
    (kaggle / "999999.jpg").write_bytes(b"not a jpeg at all")
    (kaggle / "notes.txt").write_text("seeing 1.2 arcsec")
    done = cli(root, "predict", run.id, str(kaggle), "--tta", "--out", str(tmp_path / "kaggle.csv"))
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "kaggle.csv", dtype={"id": str})
    assert len(frame) == 30 and set(frame["id"]) == {str(200000 + n) for n in range(30)}
    classes = [c[2:] for c in frame.columns if c.startswith("p_")]
    best = np.array(classes)[probabilities(frame, classes).argmax(1)]
    assert len(classes) == 6 and (frame["predicted"] == best).all()
    assert (frame["tta_spread"] >= 0).all()
    skipped = pd.read_csv(tmp_path / "kaggle.skipped.csv")
    assert sorted(Path(p).name for p in skipped["path"]) == ["999999.jpg", "notes.txt"]
    assert "2 skipped" in done.stdout and "999999.jpg" in done.stdout


@needs_realdata
def test_predict_classifies_the_real_sdss_folder_with_a_demo_run(demo_run) -> None:  # noqa: ANN001
    root, run = demo_run
    done = cli(root, "predict", run.id, str(REALDATA), "--out", "sdss.csv")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(root / "sdss.csv", dtype={"id": str})
    assert len(frame) == 120 and frame["path"].str.endswith((".jpg", ".jpeg")).all()
    assert "3 skipped" in done.stdout  # the folder's README and two CSV files


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_export_matches_pytorch_on_real_galaxies(folder_run, kind: str, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = folder_run
    target = tmp_path / f"model.{'pt' if kind == 'torchscript' else 'onnx'}"
    done = cli(root, "export", run.id, "--format", kind, "--out", str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    described = json.loads(target.with_suffix(target.suffix + ".json").read_text())
    assert described["parity"]["max_abs_difference"] <= 1e-4 and described["parity"]["galaxies"] > 0
    assert described["preprocessing"]["image_size"] == 32 and len(described["outputs"]) == 6
    import torch  # the exported file alone, fed as its JSON says, classifies like `predict`
    from PIL import Image

    from galaxy_tui.data.images import resize_image
    image = np.asarray(Image.open(sorted(REALDATA.glob("3_edge_on/*"))[0]).convert("RGB"))
    x = torch.from_numpy(resize_image(image, 32, described["preprocessing"]["centre_crop"])[None]).permute(0, 3, 1, 2)
    if kind == "torchscript":
        out = torch.jit.load(str(target))(x.float()).detach().numpy()
    else:
        onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra's runtime is not installed")
        out = onnxruntime.InferenceSession(str(target)).run(None, {"images": x.float().numpy()})[0]
    assert out.shape == (1, 6) and abs(out.sum() - 1) < 1e-4


def test_a_fraction_run_predicts_its_answers_as_its_evaluation_did(fraction_run, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = fraction_run
    done = cli(root, "predict", run.id, "--dataset", "tiny", "--out", str(tmp_path / "fractions.csv"))
    assert done.returncode == 0, done.stderr
    ours = pd.read_csv(tmp_path / "fractions.csv", dtype={"id": str}).set_index("id")
    evaluated = pd.read_csv(run.dir / "results" / "predictions.csv", dtype={"id": str}).set_index("id")
    answers = [c for c in evaluated.columns if c.startswith("pred_")]
    np.testing.assert_allclose(ours.loc[evaluated.index, answers], evaluated[answers], atol=3e-5)
    exported = cli(root, "export", run.id, "--format", "onnx", "--out", str(tmp_path / "f.onnx"))
    assert exported.returncode == 0 and "ok" in exported.stdout, exported.stdout + exported.stderr


def test_what_cannot_be_predicted_is_said_plainly(demo_run, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = demo_run
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (((str(empty),), "no image files were found"),
                          ((), "name image files or folders"),
                          (("--unlabelled",), "add --dataset NAME"),
                          (("--dataset", "nope"), "nope")):
        done = cli(root, "predict", run.id, *args)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
