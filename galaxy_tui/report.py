"""`galaxy-tui show RUN`: summary, per-class report, confusion matrix and loss curves in the terminal."""

from __future__ import annotations

from typing import Any

import plotext
from rich.console import Console
from rich.table import Table
from rich.text import Text

from galaxy_tui.analysis.calibration_figures import calibration_line, draw_reliability, threshold_table
from galaxy_tui.analysis.derived_results import is_derived
from galaxy_tui.analysis.domain import domain_note
from galaxy_tui.analysis.fraction_figures import FractionPredictions, draw_residuals, draw_scatter
from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.analysis.task_results import figure, results_of
from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events_counted
from galaxy_tui.run_model import RunModel, batch_split, format_joules, trainable_parts
from galaxy_tui.runs import RunInfo
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS


def confusion_table(classes: list[str], matrix: list[list[int]],
                    title: str = "confusion matrix (rows: true, columns: predicted)") -> Table:
    table = Table(title=title)
    table.add_column("")
    for name in classes:
        table.add_column(name[:12], justify="right")
    for name, row in zip(classes, matrix):
        total = max(1, sum(row))
        cells = [Text(str(n), style="bold green" if i == j else ("red" if n else "dim"))
                 for j, n in enumerate(row) for i in [classes.index(name)]]
        table.add_row(f"{name[:14]} ({total})", *cells)
    return table


def loss_plot(model: RunModel, width: int = 80, height: int = 16) -> str:
    plotext.clear_figure()
    plotext.plotsize(width, height)
    plotext.theme("clear")
    if model.steps:
        plotext.plot([s for s, _ in model.steps], [v for _, v in model.steps], label="train loss (steps)")
    steps, val_loss = model.epoch_series("step", "val_loss")
    if steps:
        plotext.plot(steps, val_loss, label="val loss", marker="dot")
    plotext.xlabel("optimizer step")
    return plotext.build()


def print_report(run: RunInfo, console: Console, answer: str | None = None) -> None:
    """`answer`: for a vote-fraction run, the answer whose predictions are plotted against the truth."""
    style = "green" if run.state == "finished" else "red" if run.state in ("failed", "killed", "lost") else "cyan"
    console.print(f"[bold]{run.id}[/bold]  experiment {run.experiment}  state [{style}]{run.state}[/]  "
                  f"attempt {run.attempt}  epoch {run.epoch}/{run.epochs}")
    if run.message:
        console.print(f"  {run.message}")
    model = RunModel()
    events, skipped = read_events_counted(run.dir / "events.jsonl")
    model.apply(events)
    if skipped:
        console.print(f"[yellow]{skipped} line(s) of events.jsonl could not be read and were skipped[/yellow]")
    if model.probe_done:
        d = model.probe_done
        world = int((model.started or {}).get("world") or 1)
        console.print(f"micro-batch {batch_split(d['micro_batch'], d['accumulation'], d['effective_batch'], world)}"
                      f"  ({len(model.probe_trials)} probe trials, {len(model.ooms)} OOM spikes)")
    if model.trainable:
        console.print(f"finetune: from epoch {model.trainable['epoch']} trains "
                      f"{'; '.join(trainable_parts(model.trainable))}")
    _print_manifest(run, console)
    damaged: list[str] = []
    metrics = read_metrics(run.dir, damaged)
    for problem in damaged:
        console.print(f"[yellow]{problem}[/yellow]")
    if metrics:
        _print_results(run, metrics, console, answer)
        _print_energy(metrics, console)
    if model.steps or model.epochs:
        console.print(Text.from_ansi(loss_plot(model, min(console.width, 100))))


def _plotext_figure(draw: Any, width: int, height: int = 18) -> str:
    plotext.clear_figure()
    plotext.plotsize(width, height)
    plotext.theme("clear")
    draw(plotext)
    return plotext.build()


def _print_energy(metrics: dict[str, Any], console: Console) -> None:
    if metrics.get("energy_j") is not None:
        rate = f", {metrics['images_per_j']:.1f} images per joule" if metrics.get("images_per_j") else ""
        console.print(f"training energy {format_joules(float(metrics['energy_j']))}{rate} "
                      f"({metrics.get('energy_note', '')})")
    elif metrics.get("energy_note"):
        console.print(f"[dim]training energy N/A: {metrics['energy_note']}[/dim]")


def _print_results(run: RunInfo, metrics: dict[str, Any], console: Console, answer: str | None) -> None:
    """The headline figures, the table per output and the confusion matrix as the task tells them, then what only
    its task has (calibration, or predicted vs true answers), the threshold curve and test-time augmentation."""
    view = results_of(metrics)
    console.print(Text("  ").join(view.headline_fields(metrics)))
    if (table := view.outputs_table(metrics)) is not None:
        console.print(table)
    matrix = view.matrix(metrics)
    if matrix is not None:
        console.print(confusion_table(matrix.classes, matrix.counts, matrix.title))
    elif view.no_matrix:
        console.print(Text(view.no_matrix, style="dim"))
    _TASK_FIGURES[view.kind.name](run, metrics, console, answer)
    if metrics.get("thresholds"):
        console.print(threshold_table(metrics))
    if metrics.get("tta"):
        console.print(f"test-time augmentation (mean over the 8 flips and quarter turns): {view.kind.headline_label} "
                      f"{figure(metrics['tta'].get(view.kind.headline))}")
    _print_domain(run, metrics, console)


def _print_domain(run: RunInfo, metrics: dict[str, Any], console: Console) -> None:
    if is_derived(metrics):
        return  # an ensemble or a booster has no network of its own to check images with
    note = domain_note(metrics)
    if note is None:
        console.print(f"[yellow]in-domain check: none recorded[/yellow] (evaluated before galaxy-tui kept one): "
                      f"galaxy-tui evaluate {run.id} adds it, and then predict and serve flag images unlike the "
                      f"training galaxies")
        return
    console.print(f"in-domain check: {note} (flagged beyond the {metrics['domain'].get('validation_galaxies')} "
                  f"validation galaxies' 99th percentile, so about 1% is expected; predict and serve flag such "
                  f"images and claim no calibrated confidence for them)")


def _print_calibration(run: RunInfo, metrics: dict[str, Any], console: Console, _answer: str | None) -> None:
    line = calibration_line(metrics)
    if line is not None:
        console.print(line)
        console.print(Text.from_ansi(_plotext_figure(lambda plt: draw_reliability(plt, metrics),
                                                     min(console.width, 100))))
    console.print(f"mistakes: {run.dir / 'results' / 'mistakes'}")


def _print_answers(run: RunInfo, metrics: dict[str, Any], console: Console, answer: str | None) -> None:
    """Predicted vs true for one answer, the residuals and where the worst galaxies are."""
    predictions = FractionPredictions.read(run.dir / "results" / "predictions.csv")
    if predictions is not None and answer is not None and answer not in predictions.answers:
        raise GalaxyError(f"--answer {answer!r}: this run predicts {', '.join(predictions.answers)}.")
    if predictions is not None and predictions.answers:
        width = min(console.width, 100)
        for draw in (lambda plt: draw_scatter(plt, predictions, answer or predictions.answers[0]),
                     lambda plt: draw_residuals(plt, predictions)):
            console.print(Text.from_ansi(_plotext_figure(draw, width)))
    console.print(f"worst residuals: {run.dir / 'results' / 'residuals'}")


_TASK_FIGURES = {CLASSIFICATION.name: _print_calibration, VOTE_FRACTIONS.name: _print_answers}


def _print_manifest(run: RunInfo, console: Console) -> None:
    attempts = (read_json(run.dir / "manifest.json") or {}).get("attempts") or []
    if not attempts or not isinstance(attempts[-1], dict):
        return
    m = attempts[-1]
    commit = m.get("git_commit")
    code = f"galaxy-tui {m.get('galaxy_tui')}" + (f" (commit {commit[:10]}" + (", with local changes: "
                                                  f"{m.get('git_diff')}" if m.get("git_dirty") else "") + ")"
                                                  if commit else "")
    hardware = ", ".join(m.get("gpus") or []) or m.get("device", "")
    console.print(f"[dim]{code} · python {m.get('python')} · torch {m.get('torch')} · CUDA {m.get('cuda') or '-'} "
                  f"· {hardware} · seed {m.get('seed')} · attempt {m.get('attempt')} on {m.get('host')}[/dim]")
    data = m.get("dataset") or {}
    console.print(f"[dim]data {data.get('name')} ({data.get('kind')}): {data.get('rows')} galaxies · catalogue "
                  f"sha256 {str(data.get('catalogue_sha256'))[:16]} · image list sha256 "
                  f"{str(data.get('image_list_sha256'))[:16]}[/dim]")
    applied = data.get("overrides")
    if isinstance(applied, dict):
        excluded = int(applied.get("excluded", 0))
        console.print(f"overrides applied: {excluded} galax{'y' if excluded == 1 else 'ies'} excluded, "
                      f"{applied.get('relabelled', 0)} relabelled (decisions {applied.get('digest')}, "
                      f"{run.dir / 'overrides.csv'})")
