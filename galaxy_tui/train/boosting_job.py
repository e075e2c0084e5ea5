"""The features and boosting job: the best model's penultimate layer for every galaxy (saved in features/), and
gradient boosting fitted on them, saved as a result folder of its own beside the run."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd

from galaxy_tui.analysis.boosting import as_fractions, boost_classifier, boost_regressors
from galaxy_tui.analysis.calibration import mean_log_loss
from galaxy_tui.analysis.classification_results import write_results
from galaxy_tui.analysis.derived_results import derived_folder, finish_derived, trees_text
from galaxy_tui.analysis.fraction_results import errors
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.train.attempt import Attempt, Prepared
from galaxy_tui.train.evaluation_job import fraction_results, load_best, measured_part
from galaxy_tui.train.loop import Trainer
from galaxy_tui.train.penultimate import penultimate
from galaxy_tui.train.tasks import VoteFractionTask


def features(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> dict[str, np.ndarray]:
    """The penultimate layer's output for every galaxy of each part, saved in features/ as <part>.npy beside
    <part>_ids.csv."""
    folder = attempt.run_dir / "features"
    folder.mkdir(exist_ok=True)
    found = {}
    for part, split in prepared.splits.items():
        values = penultimate(trainer, split, part)
        np.save(folder / f"{part}.npy", values)
        pd.DataFrame({"id": prepared.ids[split.indices]}).to_csv(folder / f"{part}_ids.csv", index=False)
        found[part] = values
        attempt.emit("features", part=part, galaxies=int(len(values)), dimensions=int(values.shape[1]))
    return found


def boost(attempt: Attempt, prepared: Prepared, trainer: Trainer) -> int:
    """Gradient boosting on the best model's features, saved as its own result folder beside the run."""
    started = time.time()
    attempt.state("evaluating", message="extracting features for gradient boosting")
    load_best(attempt, trainer)
    found = features(attempt, prepared, trainer)
    booster = str(attempt.config.get("boost", {}).get("booster", "histgb"))
    attempt.state("evaluating", message=f"fitting {booster} on {found['train'].shape[1]} features")
    measured, test = measured_part(prepared.splits)
    task, exp, splits = trainer.task, attempt.exp, prepared.splits
    train, val = splits["train"], splits["val"]
    test_features = found["test" if measured == "test" else "val"]
    # Boosting fits one regressor per answer, or one classifier: the tasks' results differ in kind.
    if isinstance(task, VoteFractionTask):
        answers = slice(0, task.outputs)
        raw = boost_regressors((found["train"], train.labels[:, answers]), (found["val"], val.labels[:, answers]),
                               test_features, booster, exp.seed)
        boosted = replace(raw, val=as_fractions(raw.val, task.slices, task.tree.cumulative),
                          test=as_fractions(raw.test, task.slices, task.tree.cumulative))
    else:
        boosted = boost_classifier((found["train"], train.labels), (found["val"], val.labels), test_features,
                                   len(prepared.classes), booster, exp.seed)
    what = {"run": attempt.run_dir.name, "booster": booster, "trees": list(boosted.trees),
            "features": int(found["train"].shape[1])}
    extra = {"kind": "boosted", "boosted": what, "threshold": exp.labels.threshold,
             "model": f"{booster} on {exp.model}"}
    with derived_folder(attempt.run_dir.parent, "boosted", attempt.run_dir, "boosted", what) as folder:
        extra["seconds"] = round(time.time() - started, 1)
        if isinstance(task, VoteFractionTask):
            extra["best_val_rmse"] = errors(boosted.val, val.labels[:, :task.outputs])[0]
            metrics = fraction_results(prepared, task, test, boosted.test, None, measured,
                                       {**extra, "loss_function": "mse"}, folder, boosted.val, exp.mistakes,
                                       exp.labels)
        else:
            extra["best_val_acc"] = round(float((boosted.val.argmax(1) == val.labels).mean()), 5)
            metrics = write_results(
                folder / "results", prepared.classes,
                Measured(prepared.ids[test.indices], test.labels, boosted.test),
                mean_log_loss(boosted.test, test.labels), prepared.images, test.indices, exp.mistakes, extra,
                measured, None, Measured(prepared.ids[val.indices], val.labels, boosted.val))
        built = finish_derived(folder, "boosted", metrics, started,
                               f"{booster} ({trees_text(boosted.trees)}) on the features of {attempt.run_dir.name}")
    name = task.headline
    attempt.emit("boosted", folder=built.id, trees=list(boosted.trees), **{name: metrics[name]})
    attempt.state("finished", message=f"boosted: {built.id} ({measured} {name} {metrics[name]:.4f})")
    return 0
