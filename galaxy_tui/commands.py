"""Headless subcommands: what `galaxy-tui datasets|train|runs|stop|show|compare|ensemble|evaluate|boost` print,
with Rich."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.data.labels import empty_class_warning
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling, ensure_registry, registry_for_reading
from galaxy_tui.scores import score_named

if TYPE_CHECKING:
    from galaxy_tui.runs import RunInfo


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


def train(workspace: Path, experiment: str, detach: bool, choice: str | None, devices: int | None,
          executor: str | None = None) -> int:
    from galaxy_tui.runs import latest_checkpointed_run, launch
    registry = ensure_registry(workspace)
    registry.experiment(experiment)
    _print_warnings(registry.warnings)
    if choice is None:
        previous = latest_checkpointed_run(registry, experiment)
        if previous is not None and not previous.is_live:  # a live one: launch says what can be done
            if not sys.stdin.isatty():
                raise GalaxyError(f"experiment {experiment!r} already has checkpoints in run {previous.id}; "
                                  f"add --resume, --restart or --skip.")
            choice = _ask_choice(experiment, previous.id)
            if choice is None:
                return 1
    run = launch(registry, experiment, choice, devices, executor)
    job = f", Slurm job {run.job}" if run.job else ""
    return _announce_and_follow(run, f"run [bold]{run.id}[/bold] ({run.dir}{job})", detach)


def _announce_and_follow(run: RunInfo, announcement: str, detach: bool) -> int:
    """Say what started; follow it to its end (exit 0 when it finished) unless detached."""
    from galaxy_tui.watch import follow_run
    console = Console()
    console.print(announcement)
    if detach:
        console.print(f"detached; follow it with `galaxy-tui` or `galaxy-tui show {run.id}`")
        return 0
    return 0 if follow_run(run.dir, console, attempt=run.attempt) == "finished" else 1


def evaluate(workspace: Path, run_id: str, tta: bool, detach: bool) -> int:
    from galaxy_tui.runs import reevaluate
    run = reevaluate(registry_for_reading(workspace), run_id, tta)
    return _announce_and_follow(run, f"evaluating run [bold]{run.id}[/bold] again"
                                     f"{' with the 8 flips and turns' if tta else ''} (attempt {run.attempt})", detach)


def boost(workspace: Path, run_id: str, booster: str, detach: bool) -> int:
    from galaxy_tui.runs import boost_run
    run = boost_run(registry_for_reading(workspace), run_id, booster)
    return _announce_and_follow(run, f"run [bold]{run.id}[/bold]: extracting its best model's features and "
                                     f"fitting {booster} (attempt {run.attempt}); the result gets a folder of its "
                                     f"own (boosted-…)", detach)


def _state_style(state: str) -> str:
    return {"finished": "green", "failed": "red", "killed": "red", "lost": "magenta", "stopped": "yellow"}.get(
        state, "cyan")


def list_runs(workspace: Path, filter_text: str = "") -> int:
    import time

    from galaxy_tui.bookkeeping.notes import read_notes
    from galaxy_tui.bookkeeping.run_filter import parse_filter, run_facts
    from galaxy_tui.runs import find_runs
    registry = registry_for_reading(workspace)
    runs = find_runs(registry)
    notes = {run.id: read_notes(run.dir) for run in runs}
    if filter_text.strip():
        wanted = parse_filter(filter_text)
        runs = [run for run in runs if wanted(run_facts(run, read_metrics(run.dir),
                                                        notes[run.id].tags, notes[run.id].note))]
    columns = ("run", "experiment", "state", "attempt", "epoch", "best val", "started", "tags")
    rows = [(run.id, run.experiment, run.state_text, str(run.attempt), run.epoch_text,
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
        table.add_row(row[0], row[1], f"[{_state_style(row[2].split()[0])}]{row[2]}[/]", *row[3:])
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


def stop(workspace: Path, run_id: str, wait_s: float) -> int:
    """Ask a run to stop; unless `wait_s` is 0, return once its processes are gone (exit 1 if they are not)."""
    from galaxy_tui.runs import run_info, stop_run, wait_for_end
    run = stop_run(registry_for_reading(workspace), run_id)
    console = Console()
    if run.state in ("submitted", "pending"):
        console.print(f"asked run {run.id} to stop; its Slurm job had not started, so it leaves the queue")
    elif run.state in ("queued", "preparing", "probing"):
        console.print(f"asked run {run.id} to stop; it had not started training ({run.state}), so there is "
                      f"nothing to checkpoint: launch it again to start")
    else:
        console.print(f"asked run {run.id} to stop; it finishes the step, checkpoints and becomes 'stopped'")
    if wait_s <= 0:
        return 0
    with console.status("waiting for its processes to exit…"):
        ended = wait_for_end(run.dir, wait_s)
    if not ended:
        console.print(f"[yellow]run {run.id} is still exiting after {wait_s:.0f} s; `galaxy-tui runs` shows when "
                      f"it has stopped[/yellow]")
        return 1
    info = run_info(run.dir)
    console.print(f"run {info.id}: {info.state}" + (f" ({info.message})" if info.message else ""))
    if info.state == "stopped" and run.state not in ("submitted", "pending", "queued", "preparing", "probing"):
        console.print(f"resume with `galaxy-tui train {info.experiment} --resume`")
    return 0


def show(workspace: Path, run_id: str, answer: str | None = None) -> int:
    from galaxy_tui.report import print_report
    from galaxy_tui.runs import get_run
    print_report(get_run(registry_for_reading(workspace), run_id), Console(), answer)
    return 0


def _compact(value: float | int | None) -> str:
    """1,234,567 -> 1.2M; 163,931 -> 164k."""
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}" if abs(value) < 10 * limit else f"{value / limit:.0f}{suffix}"
    return f"{value:.0f}"


def _comparison_cells(item) -> dict[str, str]:  # noqa: ANN001  (a Compared)
    def figure(value: float | None, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}"
    return {"run": item.run, "model": item.model, "best val": figure(item.best_val),
            "test": "-" if item.test is None else f"{'rmse' if item.metric == 'rmse' else 'acc'} {item.test:.4f}",
            "macro F1": figure(item.macro_f1), "size": _compact(item.image_size), "epochs": _compact(item.epochs),
            "seconds": figure(item.seconds, 1), "samples/s": _compact(item.samples_per_s),
            "parameters": _compact(item.parameters)}


COMPARE_ESSENTIAL = ("run", "model", "best val", "test", "macro F1")
COMPARE_OPTIONAL = ("parameters", "seconds", "samples/s", "size", "epochs")  # shown while the width allows


def compare(workspace: Path, run_ids: list[str], csv: Path | None) -> int:
    """Runs side by side, grouped by what makes them comparable (dataset, labelling, split); the columns a
    narrow terminal has no room for are in --csv."""
    from rich import box

    from galaxy_tui.analysis.comparison import comparable_groups, compared, comparison_frame
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    damaged: list[str] = []
    items = [compared(get_run(registry, run_id), damaged) for run_id in run_ids]
    console = Console()
    for problem in damaged:
        console.print(f"[yellow]{problem}[/yellow]")
    cells = {item.run: _comparison_cells(item) for item in items}
    width = {c: max(len(c), *(len(row[c]) for row in cells.values())) + 3  # padding and the gap
             for c in COMPARE_ESSENTIAL + COMPARE_OPTIONAL}
    columns = list(COMPARE_ESSENTIAL)
    for column in COMPARE_OPTIONAL:
        if sum(width[c] for c in columns) + width[column] <= console.width:
            columns.append(column)
    groups = comparable_groups(items)
    for number, group in enumerate(groups, start=1):
        head = group[0]
        title = f"group {number}: dataset {head.dataset}, split {head.split or 'missing'}"
        if number > 1:
            title += f" (not comparable with group 1: {groups[0][0].comparable.why_not(head.comparable)})"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        for column in columns:
            table.add_column(column, no_wrap=column in ("run", "test"),
                             justify="left" if column in ("run", "model") else "right")
        for item in group:
            table.add_row(*(cells[item.run][c] for c in columns))
        console.print(table)
    if len(columns) < len(width):
        console.print(f"[dim]left out for the width: {', '.join(c for c in width if c not in columns)} "
                      f"(all in --csv)[/dim]")
    if csv is not None:
        comparison_frame(items).to_csv(csv, index=False)
        Console(stderr=True).print(f"wrote {len(items)} rows to {csv}")
    return 0


def ensemble(workspace: Path, run_ids: list[str], scheme: str) -> int:
    from galaxy_tui.analysis.ensemble import build_ensemble
    from galaxy_tui.atomic import read_json
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    runs = [get_run(registry, run_id) for run_id in run_ids]
    built = build_ensemble(registry.runs_dir, runs, scheme)
    metrics = read_json(built.dir / "results" / "metrics.json") or {}
    weights = ", ".join(f"{run} {weight:.3f}" for run, weight in zip(metrics["ensemble"]["members"],
                                                                   metrics["ensemble"]["weights"]))
    figure, best = ("RMSE", "rmse") if "rmse" in metrics else ("accuracy", "acc")
    Console().print(f"{built.id}: {metrics.get('split', 'test')} {figure} [bold]{metrics[figure.lower()]:.4f}[/bold], "
                    f"validation {figure} {metrics[f'best_val_{best}']:.4f}; weights ({scheme}, from validation): "
                    f"{weights}\n`galaxy-tui show {built.id}` for the rest; "
                    f"`galaxy-tui compare {' '.join(run_ids)} {built.id}` beside its members")
    return 0
