"""Evaluation artefacts: predictions, confusion matrix, per-class report, the most confident mistakes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from galaxy_tui.analysis.calibration import calibrate
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.data.labels import VoteArrays, label_agreement
from galaxy_tui.data.thumbnails import thumbnail

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_file_name(text: str) -> str:
    """A galaxy id as a piece of a file name."""
    return _UNSAFE.sub("_", text)


CONFIDENCE_BINS = 10


class ImageRows(Protocol):
    """Images by dataset row: the prepared array, or anything indexed the same way."""

    def __getitem__(self, row: int) -> np.ndarray: ...


VOLUNTEER_COLUMNS = ("smooth", "disk", "edgeon_yes", "spiral", "total_classifications")


def volunteer_table(frame: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """What the volunteers said of each galaxy: the vote fractions behind its label and their `agreement`
    (the weakest fraction on the label's path down the tree: low means the volunteers were split)."""
    table = frame[list(VOLUNTEER_COLUMNS)].astype("float64").round(4).reset_index(drop=True)
    table["agreement"] = label_agreement(VoteArrays.from_frame(frame), labels).astype("float64").round(4)
    return table


def probability_table(classes: tuple[str, ...], measured: Measured) -> pd.DataFrame:
    """id, true and predicted class, confidence and p_<class> per galaxy: the layout of predictions.csv, which
    ensembles read back."""
    probabilities = measured.predicted
    frame = pd.DataFrame({"id": measured.ids, "true": np.array(classes)[measured.truth],
                          "predicted": np.array(classes)[probabilities.argmax(1)],
                          "confidence": probabilities.max(1).round(5)})
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = probabilities[:, i].round(5)
    return frame


def confidence_histograms(classes: tuple[str, ...], truth: np.ndarray,
                          probabilities: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per true class, how many right and wrong answers fell in each tenth of confidence, and the median
    confidence of each (None without answers)."""
    confidence, right = probabilities.max(1), probabilities.argmax(1) == truth
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    histograms: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(classes):
        mine = truth == k
        histograms[name] = {}
        for kind, which in (("right", right), ("wrong", ~right)):
            chosen = confidence[mine & which]
            histograms[name][kind] = np.histogram(chosen, edges)[0].tolist()
            histograms[name][f"{kind}_median"] = round(float(np.median(chosen)), 4) if len(chosen) else None
    return histograms


def write_results(results: Path, classes: tuple[str, ...], measured: Measured, loss: float, images: ImageRows,
                  rows: np.ndarray, mistakes: int, extra: dict[str, Any], split: str = "test",
                  volunteers: pd.DataFrame | None = None, val: Measured | None = None) -> dict[str, Any]:
    """Write predictions.csv, confusion.csv, mistakes/*.png + mistakes.csv and metrics.json; return metrics.
    `split` says which galaxies were measured ("test", or "validation" when the dataset has no test part);
    `volunteers` (a volunteer_table of the measured galaxies, where the dataset has votes) joins both lists.
    With `val` (the validation galaxies' probabilities) also val_predictions.csv, and temperature scaling
    fitted on them: calibrated probabilities (pcal_<class>) and the calibration error before and after."""
    results.mkdir(parents=True, exist_ok=True)
    truth, probabilities = measured.truth, measured.predicted
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    label_range = list(range(len(classes)))
    frame = probability_table(classes, measured)
    calibration = None
    if val is not None and len(val.ids):
        probability_table(classes, val).to_csv(results / "val_predictions.csv", index=False)
        calibration, calibrated = calibrate(val.predicted, val.truth, probabilities, truth)
        frame["calibrated_confidence"] = calibrated.max(1).round(5)
        for i, name in enumerate(classes):
            frame[f"pcal_{name}"] = calibrated[:, i].round(5)
    if volunteers is not None:
        frame = pd.concat([frame, volunteers.add_prefix("votes_").reset_index(drop=True)], axis=1)
    frame.to_csv(results / "predictions.csv", index=False)
    matrix = confusion_matrix(truth, predicted, labels=label_range)
    pd.DataFrame(matrix, index=pd.Index(classes, name="true"), columns=classes).to_csv(results / "confusion.csv")
    report = classification_report(truth, predicted, labels=label_range, target_names=list(classes),
                                   output_dict=True, zero_division=0)
    per_class = {name: {"precision": round(report[name]["precision"], 4), "recall": round(report[name]["recall"], 4),
                        "f1": round(report[name]["f1-score"], 4), "support": int(report[name]["support"])}
                 for name in classes}
    metrics = {
        "split": split, "loss": round(float(loss), 5), "accuracy": round(float((predicted == truth).mean()), 5),
        "macro_f1": round(report["macro avg"]["f1-score"], 4), "classes": list(classes),
        "per_class": per_class, "confusion": matrix.tolist(),
        "confidence": confidence_histograms(classes, truth, probabilities),
        "calibration": None if calibration is None else calibration.as_json(), **extra,
    }
    _write_mistakes(results / "mistakes", frame, truth, predicted, confidence, images, rows, mistakes)
    atomic_write_json(results / "metrics.json", metrics)
    return metrics


def _write_mistakes(folder: Path, frame: pd.DataFrame, truth: np.ndarray, predicted: np.ndarray,
                    confidence: np.ndarray, images: ImageRows, rows: np.ndarray, count: int) -> None:
    """The `count` most confident mistakes, the most confident of each true class (count / classes of each,
    so a rare class's errors are not crowded out) and, where there are votes, also the `count` the volunteers
    were most split on, each once, most confident first."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    wrong = np.flatnonzero(truth != predicted)
    by_confidence = wrong[np.argsort(-confidence[wrong], kind="stable")]
    per_class = max(1, count // max(1, len(np.unique(truth))))
    chosen = by_confidence[:count]
    for label in np.unique(truth[wrong]):
        chosen = np.union1d(chosen, by_confidence[truth[by_confidence] == label][:per_class])
    chosen = chosen[np.argsort(-confidence[chosen], kind="stable")]
    if "votes_agreement" in frame.columns:
        disputed = wrong[np.argsort(frame["votes_agreement"].to_numpy()[wrong], kind="stable")][:count]
        chosen = np.concatenate([chosen, np.setdiff1d(disputed, chosen)])
        chosen = chosen[np.argsort(-confidence[chosen], kind="stable")]
    columns = ["id", "true", "predicted", "confidence"] + [c for c in frame.columns if c.startswith("votes_")]
    listing = frame.iloc[chosen][columns].copy()
    listing["confidence"] = confidence[chosen].round(4)
    files = []
    for rank, i in enumerate(chosen, start=1):
        files.append(f"{rank:03d}_{safe_file_name(str(frame['id'].iloc[i]))}.png")
        thumbnail(np.asarray(images[rows[i]]), size=128, crop=0.6).save(folder / files[-1])  # galaxies sit centrally
    listing.insert(0, "file", files)
    listing.to_csv(folder / "mistakes.csv", index=False)
