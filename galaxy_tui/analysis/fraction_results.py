"""Evaluation artefacts of a vote-fraction run: every true and predicted answer per galaxy, RMSE and MAE
overall and per question beside a baseline that predicts the training split's mean answers, the labelling
rule applied to both (a confusion matrix a classification run can be compared with), and the galaxies with
the worst residuals as thumbnails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from galaxy_tui.analysis.classification_results import ImageRows, safe_file_name
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.data.labels import UNLABELLED, VoteArrays, label_votes
from galaxy_tui.data.thumbnails import thumbnail
from galaxy_tui.data.vote_tree import VoteTree, answer_errors
from galaxy_tui.registry import Labelling

UNSURE = "unsure"


def errors(predicted: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """(RMSE, MAE) over the answers the catalogue has, as metrics.json keeps them; None when it has none."""
    measured = answer_errors(predicted, truth)
    return (None, None) if measured is None else (round(measured[0], 6), round(measured[1], 6))


def mean_squared_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The squared error over the answers the catalogue has: the loss of a result no network's loss
    function made (an ensemble, a booster); 0 when the catalogue has none."""
    measured = answer_errors(predicted, truth)
    return 0.0 if measured is None else measured[0] ** 2


def question_figures(tree: VoteTree, measured: Measured, baseline: np.ndarray) -> list[dict[str, Any]]:
    flat = np.broadcast_to(baseline, measured.truth.shape)
    figures = []
    for question, (start, end) in zip(tree.questions, tree.slices):
        rmse, mae = errors(measured.predicted[:, start:end], measured.truth[:, start:end])
        base_rmse, base_mae = errors(flat[:, start:end], measured.truth[:, start:end])
        figures.append({"key": question.key, "text": question.text, "answers": list(question.answers),
                        "columns": list(question.columns), "rmse": rmse, "mae": mae,
                        "baseline_rmse": base_rmse, "baseline_mae": base_mae})
    return figures


def derived_classification(tree: VoteTree, classes: tuple[str, ...], true_labels: np.ndarray,
                           predicted: np.ndarray, labelling: Labelling) -> dict[str, Any] | None:
    """The high-confidence rule on the predicted answers against the rule on the catalogue's (given as
    `true_labels`, -1 where the volunteers were unsure), at the experiment's labelling."""
    fractions = tree.rule_fractions(predicted)
    if fractions is None:
        return None
    nan = np.full(len(predicted), np.nan, dtype=np.float32)  # the count cut was made on the true votes
    predicted_labels = label_votes(VoteArrays(**fractions, total_classifications=nan), labelling)
    names = (*classes, UNSURE)

    def index(labels: np.ndarray) -> np.ndarray:
        return np.where(labels == UNLABELLED, len(classes), labels).astype(np.int64)

    matrix = confusion_matrix(index(true_labels), index(predicted_labels), labels=list(range(len(names))))
    sure = true_labels != UNLABELLED
    accuracy = float((predicted_labels[sure] == true_labels[sure]).mean()) if sure.any() else None
    return {"classes": list(names), "confusion": matrix.tolist(), "threshold": labelling.threshold,
            "accuracy_on_sure": None if accuracy is None else round(accuracy, 5), "sure_galaxies": int(sure.sum())}


def fraction_table(columns: list[str], measured: Measured) -> pd.DataFrame:
    """id, then true_<answer> and pred_<answer> per answer: the layout of predictions.csv, which ensembles
    read back."""
    frame = pd.DataFrame({"id": measured.ids})
    for i, column in enumerate(columns):
        frame[f"true_{column}"] = measured.truth[:, i]
        frame[f"pred_{column}"] = measured.predicted[:, i]
    return frame


def write_fraction_results(results: Path, tree: VoteTree, measured: Measured, baseline: np.ndarray, loss: float,
                           images: ImageRows, rows: np.ndarray, worst: int, extra: dict[str, Any],
                           split: str, derived: dict[str, Any] | None, val: Measured | None = None) -> dict[str, Any]:
    """Write predictions.csv, residuals/*.png + residuals.csv and metrics.json; return the metrics. With `val`
    (the validation galaxies' answers) also val_predictions.csv, which ensembles weigh their members by."""
    results.mkdir(parents=True, exist_ok=True)
    columns = tree.columns
    frame = fraction_table(columns, measured)
    if val is not None and len(val.ids):
        fraction_table(columns, val).to_csv(results / "val_predictions.csv", index=False, float_format="%.7g")
    known = np.isfinite(measured.truth)
    squared = np.where(known, (measured.predicted - np.nan_to_num(measured.truth)) ** 2, 0.0)
    residual = np.sqrt(squared.sum(1) / np.maximum(known.sum(1), 1))
    frame["rmse"] = residual
    frame.to_csv(results / "predictions.csv", index=False, float_format="%.7g")
    rmse, mae = errors(measured.predicted, measured.truth)
    base_rmse, base_mae = errors(np.broadcast_to(baseline, measured.truth.shape), measured.truth)
    metrics = {
        "task": "vote-fractions", "split": split, "loss": round(float(loss), 6), "rmse": rmse, "mae": mae,
        "baseline": {"rmse": base_rmse, "mae": base_mae, "what": "the training split's mean answers",
                     "answers": [round(float(v), 6) for v in np.broadcast_to(baseline, (len(columns),))]},
        "questions": question_figures(tree, measured, baseline), "outputs": columns,
        "cumulative": tree.cumulative, "derived": derived, "galaxies": len(measured.ids), **extra,
    }
    _write_residuals(results / "residuals", tree, frame, residual, images, rows, worst)
    atomic_write_json(results / "metrics.json", metrics)
    return metrics


def _write_residuals(folder: Path, tree: VoteTree, frame: pd.DataFrame, residual: np.ndarray, images: ImageRows,
                     rows: np.ndarray, count: int) -> None:
    """The `count` galaxies the model got most wrong, with their answers to the first two questions."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    chosen = np.argsort(-residual, kind="stable")[:count]
    shown = [c for q in tree.questions[:2] for c in q.columns]
    listing = frame.iloc[chosen][["id", "rmse", *(f"{kind}_{c}" for c in shown for kind in ("true", "pred"))]]
    files = []
    for rank, i in enumerate(chosen, start=1):
        files.append(f"{rank:03d}_{safe_file_name(str(frame['id'].iloc[i]))}.png")
        thumbnail(np.asarray(images[rows[i]]), size=128, crop=0.6).save(folder / files[-1])
    listing = listing.copy()
    listing.insert(0, "file", files)
    listing.to_csv(folder / "residuals.csv", index=False, float_format="%.5g")
