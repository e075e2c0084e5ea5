"""`galaxy-tui predict RUN PATH... | --dataset NAME [--unlabelled|--all]`: a CSV of what a trained run says
about galaxies, with a progress bar and a Rich summary."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from galaxy_tui.analysis.domain import UNLIKE
from galaxy_tui.errors import GalaxyError
from galaxy_tui.inference.galaxy_sources import dataset_items, file_items
from galaxy_tui.inference.predicting import Predicted, predict_items, save_predictions
from galaxy_tui.inference.servable import LoadedRun, choose_device, load_run
from galaxy_tui.registry import registry_for_reading
from galaxy_tui.runs import get_run

SKIPPED_SHOWN = 5


def predict(workspace: Path, run_id: str, paths: list[Path], dataset: str | None, unlabelled: bool,
            out: Path | None, tta: bool, features: bool, batch: int, device: str | None) -> int:
    registry = registry_for_reading(workspace)
    run = get_run(registry, run_id)
    if dataset is None and not paths:
        raise GalaxyError("name image files or folders to classify, or --dataset NAME.")
    if dataset is not None and paths:
        raise GalaxyError("give image paths or --dataset, not both.")
    skipped: list[tuple[str, str]] = []
    if dataset is not None:
        items = dataset_items(registry, dataset, run, unlabelled)
    else:
        items, collected = file_items(paths)
        skipped = [(str(path), why) for path, why in collected.skipped]
    if not items:
        what = f"dataset {dataset!r} has no galaxies the rule dropped" if dataset else "no image files were found"
        raise GalaxyError(f"{what}; nothing to classify.")
    loaded = load_run(run.dir, choose_device(device))
    err = Console(stderr=True)
    started = time.perf_counter()
    with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("", total=len(items))
        predicted = predict_items(loaded, items, batch, tta, features,
                                  lambda done, _total: bar.update(task, completed=done))
    seconds = time.perf_counter() - started
    predicted.skipped = skipped + predicted.skipped
    frame, written = save_predictions(out or Path(f"predictions-{run.id}.csv"), loaded, predicted)
    _summary(Console(), loaded, predicted, frame, seconds, written, tta)
    return 0


def caution_line(loaded: LoadedRun, frame: pd.DataFrame) -> str:
    """How many images the run's in-domain check flagged, or that the run cannot tell."""
    if "unlike_training" not in frame:
        return (f"[yellow]{loaded.run_id} keeps no record of its training galaxies[/yellow] (evaluated before "
                f"galaxy-tui kept one), so nothing here says which images are unlike them: "
                f"galaxy-tui evaluate {loaded.run_id} adds it")
    flagged = int(frame["unlike_training"].sum())
    style = "yellow" if flagged else "green"
    return (f"[{style}]{flagged} of {len(frame)} ({flagged / max(len(frame), 1):.0%})[/{style}] {UNLIKE} "
            f"(in_domain, unlike_training in the CSV)" + ("; no calibrated confidence is given for them"
                                                         if flagged and loaded.temperature is not None else ""))


def _summary(console: Console, loaded: LoadedRun, predicted: Predicted, frame: pd.DataFrame, seconds: float,
             written: list[str], tta: bool) -> None:
    count = len(predicted.ids)
    console.print(f"[bold]{count}[/bold] galaxies classified by {loaded.run_id} on {loaded.device} in "
                  f"{seconds:.1f} s ({count / max(seconds, 1e-9):.0f}/s{', 8-view TTA' if tta else ''}); "
                  f"images prepared as in training: {loaded.image_size} px, centre crop {loaded.crop:g}")
    table = loaded.reading.summary(loaded.outputs, frame)
    if table is not None:
        console.print(table)
    elif count:
        means = frame[[f"pred_{name}" for name in loaded.outputs]].mean()
        console.print("mean predicted answers: " + "  ".join(f"{name} {value:.3f}" for name, value
                                                             in zip(loaded.outputs, means)))
    console.print(caution_line(loaded, frame))
    if predicted.skipped:
        console.print(f"[yellow]{len(predicted.skipped)} skipped[/yellow] (not images, or unreadable):")
        for where, why in predicted.skipped[:SKIPPED_SHOWN]:
            console.print(f"  {where}: {why}")
        if len(predicted.skipped) > SKIPPED_SHOWN:
            console.print(f"  … and {len(predicted.skipped) - SKIPPED_SHOWN} more")
    console.print("wrote " + "; ".join(written))
