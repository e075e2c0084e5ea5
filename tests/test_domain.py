"""The in-domain check: what a run's training galaxies look like to its network (class-conditional Mahalanobis on the
penultimate features), recorded at evaluation and used by predict, serve and the predict dialog to flag images unlike
them — and to claim no calibrated confidence for those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.analysis.domain import FILE, fit_domain, read_domain
from galaxy_tui.app.predict_dialog import prediction_caption
from galaxy_tui.errors import GalaxyError
from trained_runs import REALDATA, needs_realdata


def blobs(rng: np.random.Generator, count: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    groups = rng.integers(0, len(centres), count)
    return centres[groups] + rng.normal(size=(count, centres.shape[1])), groups


def test_images_far_from_every_class_are_flagged_and_ordinary_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6, size=(3, 16))
    train, groups = blobs(rng, 3000, centres)
    domain = fit_domain(train, groups, blobs(rng, 1000, centres)[0])
    held_out = domain.distances(blobs(rng, 2000, centres)[0])
    # Between the classes, where no training galaxy lies, is as strange as far away: a class-free Gaussian would
    # call the middle of the cloud ordinary.
    between = domain.distances(centres.mean(0, keepdims=True) + rng.normal(size=(200, 16)))
    far = domain.distances(rng.normal(scale=6, size=(200, 16)) + 30)
    assert 0.003 < domain.flagged(held_out).mean() < 0.03  # the validation 99th percentile: about 1%
    assert domain.flagged(between).mean() > 0.95 and domain.flagged(far).all()
    scores = domain.in_domain(held_out)
    assert 0.4 < np.median(scores) < 0.6 and (domain.in_domain(far) == 0).all()  # about uniform where it belongs


def test_the_record_survives_a_round_trip_and_a_damaged_one_reads_as_none(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=4, size=(2, 8))
    train, groups = blobs(rng, 500, centres)
    domain = fit_domain(train, groups, blobs(rng, 100, centres)[0])
    domain.save(tmp_path / FILE)
    again = read_domain(tmp_path / FILE, 8)
    assert again is not None and again.fitted_on == 500
    assert read_domain(tmp_path / FILE, 16) is None  # a record of another network's features is not used
    probe = rng.normal(size=(50, 8)) * 3
    np.testing.assert_allclose(again.distances(probe), domain.distances(probe), rtol=1e-4)
    (tmp_path / FILE).write_bytes(b"PK\x03\x04 cut short")
    assert read_domain(tmp_path / FILE, 8) is None and read_domain(tmp_path / "absent.npz", 8) is None
    with pytest.raises(GalaxyError, match="8"):
        domain.distances(np.zeros((2, 5)))
    with pytest.raises(GalaxyError, match="too few"):
        fit_domain(train[:1], groups[:1], train[:5])


def test_a_flagged_galaxy_is_captioned_without_a_calibrated_confidence() -> None:
    row = {"path": "x/real.jpg", "predicted": "elliptical", "confidence": "0.926", "p_elliptical": "0.926",
           "p_spiral": "0.074", "calibrated_confidence": "", "in_domain": "0.0", "unlike_training": "True"}
    caption = prediction_caption(row)
    assert "calibrated" not in caption and "Unlike the training galaxies (in-domain 0.00)" in caption
    ordinary = {**row, "calibrated_confidence": "0.95", "in_domain": "0.4", "unlike_training": "False"}
    assert "calibrated 95.0%" in prediction_caption(ordinary) and "nlike" not in prediction_caption(ordinary)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), *args],
                          capture_output=True, text=True, timeout=300, cwd=root, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.slow
@needs_realdata
def test_a_demo_model_flags_real_sdss_galaxies_and_not_its_own_test_galaxies(demo_run) -> None:  # noqa: ANN001
    """The demo model has seen only rendered galaxies: real SDSS cut-outs are flagged and get no calibrated
    confidence; the run's own test galaxies mostly are not (the figure `show` reports)."""
    import json
    root, run = demo_run
    metrics = json.loads((run.dir / "results" / "metrics.json").read_text())
    assert metrics["domain"]["flagged"] <= 0.1 and (run.dir / "results" / FILE).is_file()
    done = cli(root, "predict", run.id, str(REALDATA), "--out", "real-domain.csv")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(root / "real-domain.csv", dtype={"id": str})
    assert frame["unlike_training"].mean() >= 0.9
    assert frame.loc[frame["unlike_training"], "calibrated_confidence"].isna().all()
    assert "unlike the training galaxies" in done.stdout
    own = cli(root, "predict", run.id, "--dataset", "tiny", "--out", "own-domain.csv")
    assert own.returncode == 0, own.stderr
    tested = pd.read_csv(run.dir / "results" / "predictions.csv", dtype={"id": str})["id"]
    mine = pd.read_csv(root / "own-domain.csv", dtype={"id": str}).set_index("id").loc[tested]
    assert mine["unlike_training"].mean() == pytest.approx(metrics["domain"]["flagged"], abs=1e-4)
    shown = cli(root, "show", run.id)
    assert f"in-domain check: {metrics['domain']['flagged']:.1%} of the test galaxies" in shown.stdout
