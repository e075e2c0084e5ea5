"""Calibrated confidence: the calibration error against a hand computation, temperature scaling on a model
made over-confident on purpose, and what a run writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.analysis.calibration import calibrate, expected_calibration_error, fit_temperature, scaled
from galaxy_tui.analysis.classification_results import write_results
from galaxy_tui.analysis.measured import Measured


def honest_model(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that mean what they say: each galaxy's class is drawn from them."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(3, 0.7), count)
    truth = np.array([rng.choice(3, p=p) for p in probabilities])
    return probabilities, truth


def test_the_calibration_error_matches_a_hand_computation() -> None:
    probabilities, truth = honest_model(500, 0)
    confidence, right = probabilities.max(1), probabilities.argmax(1) == truth
    gap = 0.0
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        members = (confidence > low) & (confidence <= high)
        if members.any():
            gap += members.sum() / len(truth) * abs(confidence[members].mean() - right[members].mean())
    assert expected_calibration_error(probabilities, truth) == pytest.approx(gap, abs=1e-12)


def test_temperature_scaling_repairs_an_over_confident_model() -> None:
    """Honest probabilities sharpened (divided logits by 0.4): the fitted temperature undoes it, and the error
    after scaling is lower than before, on validation and on galaxies the fit never saw."""
    val_p, val_truth = honest_model(3000, 1)
    test_p, test_truth = honest_model(3000, 2)
    sharp_val, sharp_test = scaled(val_p, 0.4), scaled(test_p, 0.4)
    temperature = fit_temperature(sharp_val, val_truth)
    assert 2.0 < temperature < 3.2  # 1 / 0.4 = 2.5
    figures, calibrated = calibrate(sharp_val, val_truth, sharp_test, test_truth)
    assert figures.val_after < figures.val_before / 2 and figures.after < figures.before / 2
    np.testing.assert_allclose(calibrated.sum(1), 1.0, atol=1e-9)
    assert (calibrated.argmax(1) == sharp_test.argmax(1)).all()  # a temperature never changes the answer


def test_a_calibrated_model_is_left_about_as_it_is_and_never_made_worse_on_validation() -> None:
    """The temperature is the validation log-loss's: kept at 1 only where scaling does not lower that loss, and
    never raising it. (The binned error was the judge before: on few galaxies it kept over-confident models at 1.)"""
    val_p, val_truth = honest_model(3000, 3)
    assert fit_temperature(val_p, val_truth) == pytest.approx(1.0, abs=0.15)
    for seed in range(5, 25):
        small_p, small_truth = honest_model(40, seed)
        figures, _ = calibrate(small_p, small_truth, small_p, small_truth)
        assert figures.val_nll_after <= figures.val_nll_before
        assert figures.temperature == 1.0 or figures.val_nll_after < figures.val_nll_before


def test_an_over_confident_model_on_few_galaxies_is_scaled_by_its_log_loss() -> None:
    """200 validation galaxies of a model sharpened 2.5 times: the log-loss fit softens it, whatever the ten
    bins' noisy error says, and the record says how the temperature was chosen and over how many bins."""
    val_p, val_truth = honest_model(200, 40)
    test_p, test_truth = honest_model(3000, 41)
    figures, _ = calibrate(scaled(val_p, 0.4), val_truth, scaled(test_p, 0.4), test_truth)
    assert figures.temperature > 1.5 and figures.val_nll_after < figures.val_nll_before
    assert figures.after < figures.before  # better calibrated on galaxies the fit never saw
    record = figures.as_json()
    assert record["fitted_by"] == "validation log-loss" and record["bins"] == 10


def test_results_carry_validation_predictions_and_calibrated_probabilities(tmp_path: Path) -> None:
    val_p, val_truth = honest_model(400, 4)
    test_p, test_truth = honest_model(300, 5)
    images = np.zeros((300, 8, 8, 3), dtype=np.uint8)
    metrics = write_results(tmp_path, ("a", "b", "c"), Measured(np.arange(300), test_truth, scaled(test_p, 0.5)),
                            0.5, images, np.arange(300), 2, {}, val=Measured(np.arange(400), val_truth,
                                                                              scaled(val_p, 0.5)))
    calibration = metrics["calibration"]
    assert calibration["temperature"] > 1.3 and calibration["ece_after"] < calibration["ece_before"]
    assert sum(b["count"] for b in calibration["reliability_before"]) == 300
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    np.testing.assert_allclose(predictions[["pcal_a", "pcal_b", "pcal_c"]].sum(axis=1), 1.0, atol=2e-5)
    assert len(pd.read_csv(tmp_path / "val_predictions.csv")) == 400
    histograms = metrics["confidence"]
    assert sum(sum(h["right"]) + sum(h["wrong"]) for h in histograms.values()) == 300
    assert sum(histograms["a"]["right"]) == int(((test_truth == 0) & (test_p.argmax(1) == 0)).sum())


def test_show_prints_each_class_s_median_confidence_not_a_bin() -> None:
    import io

    from rich.console import Console

    from galaxy_tui.analysis.calibration_figures import per_class_table
    from galaxy_tui.analysis.classification_results import confidence_histograms
    probabilities = np.array([[0.95, 0.05], [0.85, 0.15], [0.61, 0.39], [0.3, 0.7], [0.45, 0.55]])
    truth = np.array([0, 0, 0, 0, 1])  # class a: right at 0.95, 0.85, 0.61; wrong at 0.7
    histograms = confidence_histograms(("a", "b"), truth, probabilities)
    assert histograms["a"]["right_median"] == 0.85 and histograms["a"]["wrong_median"] == 0.7
    assert histograms["b"]["wrong_median"] is None
    per_class = {name: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for name in ("a", "b")}

    def shown(confidence: dict) -> str:
        console = Console(file=io.StringIO(), width=120, color_system=None)
        console.print(per_class_table({"per_class": per_class, "confidence": confidence}))
        return console.file.getvalue()
    assert "0.850 | 0.700" in shown(histograms)
    older = {name: {"right": h["right"], "wrong": h["wrong"]} for name, h in histograms.items()}  # tenths alone
    assert "~0.85 | ~0.65" in shown(older)  # read off the tenths (within a bin, linearly), and marked so
