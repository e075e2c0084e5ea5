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
from galaxy_tui.inference.servable import LoadedRun, choose_device, load_run
from galaxy_tui.inference.streaming import CHUNK, Streamed, predict_streaming
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
    target = out or Path(f"predictions-{run.id}.csv")
    err = Console(stderr=True)
    started = time.perf_counter()
    reached = [0]

    def advanced(done: int, _total: int) -> None:
        reached[0] = done
        bar.update(task, completed=done)
    try:
        with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("", total=len(items))
            streamed = predict_streaming(loaded, items, target, batch, tta, features, advanced)
    except KeyboardInterrupt:
        err.print(f"stopped after {reached[0]} of {len(items)} galaxies; the same command continues from the last "
                  f"{CHUNK} written ({target}.partial)")
        return 130
    seconds = time.perf_counter() - started
    frame = pd.read_csv(target)
    if skipped:  # files that are not images, found before any was classified
        listed = target.with_suffix(".skipped.csv")
        pd.DataFrame(skipped, columns=["path", "why"]).to_csv(listed, index=False, mode="a",
                                                             header=not listed.exists())
        if str(listed) not in " ".join(streamed.written):
            streamed.written.append(f"{listed} (the files skipped, with why)")
    _summary(Console(), loaded, frame, skipped + streamed.skipped, seconds, streamed, tta)
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


def _summary(console: Console, loaded: LoadedRun, frame: pd.DataFrame, skipped: list[tuple[str, str]],
             seconds: float, streamed: Streamed, tta: bool) -> None:
    count = len(frame)
    fresh = count - streamed.resumed_at
    console.print(f"[bold]{count}[/bold] galaxies classified by {loaded.run_id} on {loaded.device} "
                  + (f"({streamed.resumed_at} by the interrupted predict before, {fresh} now) "
                     if streamed.resumed_at else "")
                  + f"in {seconds:.1f} s ({fresh / max(seconds, 1e-9):.0f}/s{', 8-view TTA' if tta else ''}); "
                  f"images prepared as in training: {loaded.image_size} px, centre crop {loaded.crop:g}")
    table = loaded.reading.summary(loaded.outputs, frame)
    if table is not None:
        console.print(table)
    elif count:
        means = frame[[f"pred_{name}" for name in loaded.outputs]].mean()
        console.print("mean predicted answers: " + "  ".join(f"{name} {value:.3f}" for name, value
                                                             in zip(loaded.outputs, means)))
    console.print(caution_line(loaded, frame))
    if skipped:
        console.print(f"[yellow]{len(skipped)} skipped[/yellow] (not images, or unreadable):")
        for where, why in skipped[:SKIPPED_SHOWN]:
            console.print(f"  {where}: {why}")
        if len(skipped) > SKIPPED_SHOWN:
            console.print(f"  … and {len(skipped) - SKIPPED_SHOWN} more")
    console.print("wrote " + "; ".join(streamed.written))
