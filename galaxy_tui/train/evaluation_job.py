"""The evaluation job: the best checkpoint on the test galaxies (validation where the dataset has no test part),
with test-time augmentation when asked, the accuracy against the vote threshold, energy, and the results folder
(metrics.json, predictions, confusion or residuals, mistakes)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_tui.analysis.classification_results import write_results
from galaxy_tui.analysis.fraction_results import (
    derived_classification,
    mean_squared_error,
    write_fraction_results,
)
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.atomic import read_json
from galaxy_tui.data.cache import prepare_images
from galaxy_tui.data.labels import UNLABELLED
from galaxy_tui.events import read_events
from galaxy_tui.registry import Labelling
from galaxy_tui.train.attempt import Attempt, Prepared
from galaxy_tui.train.checkpoint import load_checkpoint
from galaxy_tui.train.domain_record import record_domain
from galaxy_tui.train.loop import Split, Trainer
from galaxy_tui.train.tasks import VoteFractionTask

THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.5 ... 0.95


def measured_part(splits: dict[str, Split]) -> tuple[str, Split]:
    """The galaxies results are measured on: the test part, or the validation part (and saying so) when the
    dataset has no test part — never validation called "test"."""
    return ("test", splits["test"]) if len(splits["test"].indices) else ("validation", splits["val"])


def load_best(attempt: Attempt, trainer: Trainer) -> dict[str, Any]:
    """The best checkpoint's weights in the trainer's model; a stop from here ends the job at once."""
    trainer.interrupt = attempt.stop.check
    best = load_checkpoint(attempt.run_dir / "checkpoints" / "best.pt", attempt.frozen.config_hash)
    trainer.model.load_state_dict(best["model"])
    return best


def evaluate(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> int:
    attempt.collectives.barrier()  # every rank is past training, and rank 0 has written best.pt
    if attempt.rank != 0:
        return 0  # rank 0 evaluates alone: no collective is left, and it alone writes results
    attempt.state("evaluating")
    best = load_best(attempt, trainer)
    task, exp = trainer.task, attempt.exp
    measured, test = measured_part(prepared.splits)
    loss, predictions = trainer.predict(test)
    tta = trainer.predict(test, tta=True)[1] if exp.tta else None
    best_metric = float(best["best_metric"])
    extra = {"best_epoch": int(best["best_epoch"]), f"best_{task.metric}": round(best_metric, 5),
             "epochs_trained": _epochs_trained(attempt, int(best["epoch"])), "micro_batch": trainer.micro_batch,
             "model": exp.model + (f" ({exp.views} views pooled)" if exp.views > 1 else ""),
             "parameters": sum(p.numel() for p in trainer.model.parameters()),
             "threshold": exp.labels.threshold if prepared.dataset.has_votes else None,  # None: no rule applies
             **_run_energy(attempt, trainer),
             "seconds": _training_seconds(attempt)}
    if measured == "validation":
        attempt.emit("warning", message="this dataset has no test part: the results are measured on the validation "
                                        "galaxies (which chose the best checkpoint), so they are optimistic")
    if tta is not None:
        extra["tta"] = {"views": 8, task.headline: task.headline_of(tta, test.labels)}
    if task.reports_volunteers and prepared.dataset.has_votes:
        extra["thresholds"] = _threshold_curve(attempt, prepared, trainer)
    extra["domain"] = record_domain(attempt, prepared, trainer, measured, test)
    val = prepared.splits["val"]
    val_predictions = predictions if measured == "validation" else trainer.predict(val)[1]
    # The two tasks' results differ in kind (a confusion matrix and mistakes; residuals per answer).
    if isinstance(task, VoteFractionTask):
        metrics = fraction_results(prepared, task, test, predictions, loss, measured,
                                   {**extra, "loss_function": exp.loss}, attempt.run_dir, val_predictions,
                                   exp.mistakes, exp.labels)
        attempt.emit("eval", split=measured, loss=metrics["loss"], rmse=metrics["rmse"], mae=metrics["mae"],
                     baseline_rmse=metrics["baseline"]["rmse"])
    else:
        metrics = write_results(
            attempt.run_dir / "results", prepared.classes,
            Measured(prepared.ids[test.indices], test.labels, predictions), loss, prepared.images, test.indices,
            exp.mistakes, extra, measured,
            prepared.volunteers.iloc[test.indices] if prepared.volunteers is not None else None,
            Measured(prepared.ids[val.indices], val.labels, val_predictions))
        attempt.emit("eval", split=measured, loss=metrics["loss"], accuracy=metrics["accuracy"],
                     per_class=metrics["per_class"])
    headline = {task.headline: metrics[task.headline], "loss": metrics["loss"]}
    attempt.emit("finished", **headline, **{f"best_{task.metric}": best_metric})
    attempt.state("finished", best_metric=best_metric, **{f"test_{task.headline}": metrics[task.headline]},
                  message="")
    return 0


def fraction_results(prepared: Prepared, task: VoteFractionTask, test: Split, predictions: np.ndarray,
                     loss: float | None, measured: str, extra: dict[str, Any], folder: Path,
                     val_predictions: np.ndarray, mistakes: int, labelling: Labelling) -> dict[str, Any]:
    """The vote-fraction artefacts of `predictions` in folder/results; `loss` None: the mean squared error
    over the catalogue's answers (a booster has no loss of the network's kind)."""
    truth = test.labels[:, :task.outputs]
    train = prepared.splits["train"]
    with np.errstate(all="ignore"):
        baseline = np.nan_to_num(np.nanmean(train.labels[:, :task.outputs], axis=0))
    derived = derived_classification(task.tree, prepared.classes, prepared.rule_labels[test.indices], predictions,
                                     labelling)
    val = prepared.splits["val"]
    return write_fraction_results(
        folder / "results", task.tree, Measured(prepared.ids[test.indices], truth, predictions), baseline,
        mean_squared_error(predictions, truth) if loss is None else loss, prepared.images, test.indices,
        mistakes, extra, measured, derived,
        Measured(prepared.ids[val.indices], val.labels[:, :task.outputs], val_predictions))


def _threshold_curve(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> list[dict[str, float | int | None]]:
    """Accuracy on the galaxies never trained on that the labelling rule labels at thresholds 0.5 to 0.95:
    how the model does on galaxies less certain than those it learnt from (and on surer ones)."""
    attempt.state("evaluating", message="accuracy against the vote threshold")
    dataset, exp = prepared.dataset, attempt.exp
    frame = dataset.frame
    trained = frame["id"].isin(set(prepared.ids[prepared.splits["train"].indices])).to_numpy()
    labels = {t: dataset.labels(replace(exp.labels, threshold=t)) for t in THRESHOLDS}
    rows = np.flatnonzero(~trained & np.any([lab != UNLABELLED for lab in labels.values()], axis=0))
    if not len(rows):
        return []
    images = prepare_images(dataset, list(frame["ref"].iloc[rows]), exp.image_size, attempt.frozen.cache_dir,
                            attempt.frozen.crop)
    with trainer.reading(images.images):
        predicted = trainer.predict(Split(np.arange(len(rows)), np.zeros(len(rows), dtype=np.int64)))[1].argmax(1)
    curve = []
    for threshold, at in labels.items():
        counted = images.valid & (at[rows] != UNLABELLED)
        curve.append({"threshold": threshold, "galaxies": int(counted.sum()),
                      "accuracy": round(float((predicted[counted] == at[rows][counted]).mean()), 5)
                      if counted.any() else None})
    return curve


def _epochs_trained(attempt: Attempt, best_epoch: int) -> int:
    """The last epoch any attempt finished (the best one may be earlier: early stopping, a later decline)."""
    epochs = [int(e["epoch"]) for e in read_events(attempt.run_dir / "events.jsonl") if e.get("type") == "epoch"]
    return max([best_epoch, *epochs])


def _training_seconds(attempt: Attempt) -> float:
    """From the run's start to now; an evaluation alone (--skip, evaluate) keeps the figure the training
    recorded rather than counting the days between."""
    earlier = read_json(attempt.run_dir / "results" / "metrics.json") if attempt.mode == "evaluate" else None
    if earlier and isinstance(earlier.get("seconds"), (int, float)):
        return float(earlier["seconds"])
    return round(time.time() - float(attempt.reporter.get("started", attempt.started)), 1)


def _run_energy(attempt: Attempt, trainer: Trainer) -> dict[str, Any]:
    """Energy of the whole training (all attempts) and images per joule, for metrics.json."""
    energy, steps = trainer.progress.energy_j, trainer.progress.step
    last = attempt.run_dir / "checkpoints" / "last.pt"
    if attempt.mode == "evaluate" and last.exists():  # --skip: the figures are in the last checkpoint
        state = load_checkpoint(last, attempt.frozen.config_hash)
        energy, steps = state.get("energy_j"), int(state["step"])
    images = steps * trainer.per_rank_batch * attempt.world
    return {"energy_j": None if energy is None else round(energy, 1),
            "images_per_j": round(images / energy, 3) if energy else None,
            "energy_note": attempt.energy_source or attempt.energy()[1]}
