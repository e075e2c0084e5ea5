"""Headless subcommands: what `galaxy-tui datasets|train|runs|stop|show` print, with Rich."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from galaxy_tui.data.labels import empty_class_warning
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling, ensure_registry, registry_for_reading
from galaxy_tui.scores import score_named


def _labelling(threshold: float | None, min_classifications: int | None, max_artifact: float | None) -> Labelling:
    default = Labelling()
    labelling = Labelling(default.threshold if threshold is None else threshold,
                          default.min_classifications if min_classifications is None else min_classifications,
                          default.max_artifact if max_artifact is None else max_artifact)
    if not 0.5 < labelling.threshold <= 1.0:
        raise GalaxyError(f"--threshold {labelling.threshold} is outside (0.5, 1.0]; try 0.8.")
    return labelling


def list_datasets(workspace: Path, threshold: float | None, min_classifications: int | None,
                  max_artifact: float | None) -> int:
    labelling = _labelling(threshold, min_classifications, max_artifact)
    registry = registry_for_reading(workspace)
    console = Console()
    table = Table(title=f"Datasets in {registry.path}  (threshold {labelling.threshold:g}, "
                        f"min votes {labelling.min_classifications}, max artifact {labelling.max_artifact:g})")
    for column in ("name", "kind", "rows", "labelled", "class counts", "source"):
        table.add_column(column)
    notes: list[str] = []
    for spec in registry.datasets.values():
        try:
            dataset = load_dataset(spec, registry.cache_dir)
        except GalaxyError as exc:
            table.add_row(spec.name, spec.kind, "-", "-", "[red]cannot load[/red]", "")
            notes.append(f"[red]{spec.name}[/red]: {exc}")
            continue
        counts = dataset.counts(labelling)
        table.add_row(spec.name, spec.kind, str(len(dataset.frame)), str(sum(counts.values())),
                      "  ".join(f"{name} {n}" for name, n in counts.items()), dataset.location)
        notes.extend(f"[yellow]{spec.name}[/yellow]: {problem}" for problem in dataset.problems)
        warning = empty_class_warning(counts, spec.name) if dataset.has_votes else None
        if warning:
            notes.append(f"[yellow]{warning}[/yellow]")
    console.print(table)
    for note in notes:
        console.print(note)
    _print_warnings(registry.warnings)
    return 0


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"galaxy-tui: warning: {warning}", file=sys.stderr)


# ---------------------------------------------------------------- runs

def _ask_choice(experiment: str, previous: str) -> str | None:
    from rich.prompt import Prompt
    answer = Prompt.ask(f"Experiment {experiment} already has checkpoints (run {previous}). Resume, restart, "
                        f"skip (evaluate best) or cancel?", choices=["resume", "restart", "skip", "cancel"],
                        default="resume")
    return None if answer == "cancel" else answer


def train(workspace: Path, experiment: str, detach: bool, choice: str | None, devices: int | None) -> int:
    from galaxy_tui.runs import latest_checkpointed_run, launch
    from galaxy_tui.watch import follow_run
    registry = ensure_registry(workspace)
    registry.experiment(experiment)
    _print_warnings(registry.warnings)
    if choice is None:
        previous = latest_checkpointed_run(registry, experiment)
        if previous is not None:
            if not sys.stdin.isatty():
                raise GalaxyError(f"experiment {experiment!r} already has checkpoints in run {previous.id}; "
                                  f"add --resume, --restart or --skip.")
            choice = _ask_choice(experiment, previous.id)
            if choice is None:
                return 1
    run = launch(registry, experiment, choice, devices)
    console = Console()
    console.print(f"run [bold]{run.id}[/bold] ({run.dir})")
    if detach:
        console.print(f"detached; follow it with `galaxy-tui` or `galaxy-tui show {run.id}`")
        return 0
    final = follow_run(run.dir, console, attempt=run.attempt)
    return 0 if final == "finished" else 1


def _state_style(state: str) -> str:
    return {"finished": "green", "failed": "red", "killed": "red", "lost": "magenta", "stopped": "yellow"}.get(
        state, "cyan")


def list_runs(workspace: Path, filter_text: str = "") -> int:
    import time

    from galaxy_tui.atomic import read_json
    from galaxy_tui.bookkeeping.notes import read_notes
    from galaxy_tui.bookkeeping.run_filter import parse_filter, run_facts
    from galaxy_tui.runs import find_runs
    registry = registry_for_reading(workspace)
    runs = find_runs(registry)
    notes = {run.id: read_notes(run.dir) for run in runs}
    if filter_text.strip():
        wanted = parse_filter(filter_text)
        runs = [run for run in runs if wanted(run_facts(run, read_json(run.dir / "results" / "metrics.json"),
                                                        notes[run.id].tags, notes[run.id].note))]
    columns = ("run", "experiment", "state", "attempt", "epoch", "best val", "started", "tags")
    rows = [(run.id, run.experiment, run.state, str(run.attempt), f"{run.epoch}/{run.epochs}",
             "-" if run.best_metric is None else f"{score_named(run.metric).short} {run.best_metric:.4f}",
             time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started)) if run.started else "-",
             " ".join(notes[run.id].tags)) for run in runs]
    if not sys.stdout.isatty():  # for scripts: whole ids, one run a line, tab-separated
        print("\t".join(columns))
        for row in rows:
            print("\t".join(row))
        return 0
    table = Table(title=f"Runs in {registry.runs_dir}")
    table.add_column(columns[0], no_wrap=True, overflow="fold")  # an id is never cut: `show ID` needs it whole
    for column in columns[1:]:
        table.add_column(column)
    for row in rows:
        table.add_row(row[0], row[1], f"[{_state_style(row[2])}]{row[2]}[/]", *row[3:])
    Console().print(table)
    return 0


def export_metrics_csv(workspace: Path, run_ids: list[str], output: Path | None) -> int:
    from galaxy_tui.bookkeeping.export import export_metrics, metrics_csv
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    run_dirs = [get_run(registry, run_id).dir for run_id in run_ids]
    if output is None:
        sys.stdout.write(metrics_csv(run_dirs))
        return 0
    rows = export_metrics(run_dirs, output)
    Console(stderr=True).print(f"wrote {rows} rows for {len(run_dirs)} run(s) to {output}")
    return 0


def diff_runs(workspace: Path, first: str, second: str) -> int:
    from galaxy_tui.bookkeeping.config_diff import changes_table, run_changes
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    a, b = get_run(registry, first), get_run(registry, second)
    changes = run_changes(a.dir, b.dir)
    if not changes:
        Console().print(f"{a.id} and {b.id} have the same configuration")
        return 0
    Console().print(changes_table(changes, a.id, b.id, title=f"What changed from {a.id} to {b.id}"))
    return 0


def stop(workspace: Path, run_id: str) -> int:
    from galaxy_tui.runs import stop_run
    run = stop_run(registry_for_reading(workspace), run_id)
    if run.state in ("queued", "preparing", "probing"):
        Console().print(f"asked run {run.id} to stop; it had not started training ({run.state}), so there is "
                        f"nothing to checkpoint: launch it again to start")
    else:
        Console().print(f"asked run {run.id} to stop; it finishes the step, checkpoints and becomes 'stopped' "
                        f"(resume with `galaxy-tui train {run.experiment} --resume`)")
    return 0


def show(workspace: Path, run_id: str, answer: str | None = None) -> int:
    from galaxy_tui.report import print_report
    from galaxy_tui.runs import get_run
    print_report(get_run(registry_for_reading(workspace), run_id), Console(), answer)
    return 0
