"""`galaxy-tui show RUN`: summary, per-class report, confusion matrix and loss curves in the terminal."""

from __future__ import annotations

from typing import Any

import plotext
from rich.console import Console
from rich.table import Table
from rich.text import Text

from galaxy_tui.analysis.calibration_figures import (
    calibration_line,
    draw_reliability,
    per_class_table,
    threshold_table,
)
from galaxy_tui.analysis.fraction_figures import (
    FractionPredictions,
    draw_residuals,
    draw_scatter,
    headline,
    is_fraction_run,
    question_table,
)
from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import read_events_counted
from galaxy_tui.run_model import RunModel, batch_split, format_joules, trainable_parts
from galaxy_tui.runs import RunInfo


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
    if is_fraction_run(metrics):
        _print_fractions(run, metrics, console, answer)
    elif metrics:
        split = str(metrics.get("split", "test"))
        console.print(f"{split} accuracy [bold]{_figure(metrics.get('accuracy'))}[/bold]  {split} loss "
                      f"{_figure(metrics.get('loss'))}  macro F1 {_figure(metrics.get('macro_f1'))}  best val acc "
                      f"{_figure(metrics.get('best_val_acc'))} (epoch {metrics.get('best_epoch')})")
        if isinstance(metrics.get("per_class"), dict) and metrics.get("per_class"):
            console.print(per_class_table(metrics))
        if metrics.get("classes") and metrics.get("confusion"):
            console.print(confusion_table(metrics["classes"], metrics["confusion"]))
        _print_calibration(metrics, console)
        console.print(f"mistakes: {run.dir / 'results' / 'mistakes'}")
    if metrics and metrics.get("thresholds"):
        console.print(threshold_table(metrics))
    if metrics and metrics.get("tta"):
        tta = metrics["tta"]
        figure = f"accuracy {_figure(tta.get('accuracy'))}" if "accuracy" in tta else f"RMSE {tta.get('rmse')}"
        console.print(f"test-time augmentation (mean over the 8 flips and quarter turns): {figure}")
    if metrics:
        _print_energy(metrics, console)
    if model.steps or model.epochs:
        console.print(Text.from_ansi(loss_plot(model, min(console.width, 100))))


def _figure(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def _print_calibration(metrics: dict[str, Any], console: Console) -> None:
    line = calibration_line(metrics)
    if line is None:
        return
    console.print(line)
    console.print(Text.from_ansi(_plotext_figure(lambda plt: draw_reliability(plt, metrics), min(console.width, 100))))


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


def _print_fractions(run: RunInfo, metrics: dict[str, Any], console: Console, answer: str | None = None) -> None:
    """A vote-fraction run: RMSE and MAE beside the mean baseline, per question, the labelling rule applied to
    the predicted answers, predicted vs true for one answer, the residuals and where the worst galaxies are."""
    predictions = FractionPredictions.read(run.dir / "results" / "predictions.csv")
    if predictions is not None and answer is not None and answer not in predictions.answers:
        raise GalaxyError(f"--answer {answer!r}: this run predicts {', '.join(predictions.answers)}.")
    console.print(headline(metrics))
    console.print(question_table(metrics))
    derived = metrics.get("derived")
    if derived:
        console.print(confusion_table(derived["classes"], derived["confusion"],
                                      f"labelling rule at {derived.get('threshold')}: volunteers' answers (rows) vs "
                                      f"predicted answers (columns)"))
    else:
        console.print("[dim]no derived classification: the chosen questions leave out one the labelling rule "
                      "reads[/dim]")
    if predictions is not None and predictions.answers:
        width = min(console.width, 100)
        for draw in (lambda plt: draw_scatter(plt, predictions, answer or predictions.answers[0]),
                     lambda plt: draw_residuals(plt, predictions)):
            console.print(Text.from_ansi(_plotext_figure(draw, width)))
    console.print(f"worst residuals: {run.dir / 'results' / 'residuals'}")


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
