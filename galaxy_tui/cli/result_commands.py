"""Headless result commands: `galaxy-tui show|compare|ensemble|diff|export-metrics`, with Rich."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from galaxy_tui.registry import registry_for_reading
from galaxy_tui.task_kinds import kind_of_metrics

if TYPE_CHECKING:
    pass



def export_metrics_csv(workspace: Path, run_ids: list[str], output: Path | None) -> int:
    from galaxy_tui.records.export import export_metrics, metrics_csv
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
    from galaxy_tui.records.config_diff import changes_table, run_changes
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    a, b = get_run(registry, first), get_run(registry, second)
    changes = run_changes(a.dir, b.dir)
    if not changes:
        Console().print(f"{a.id} and {b.id} have the same configuration")
        return 0
    Console().print(changes_table(changes, a.id, b.id, title=f"What changed from {a.id} to {b.id}"))
    return 0

def show(workspace: Path, run_id: str, answer: str | None = None, as_json: bool = False) -> int:
    from galaxy_tui.runs import get_run
    run = get_run(registry_for_reading(workspace), run_id)
    if as_json:
        import json

        from galaxy_tui.atomic import finite
        from galaxy_tui.records.notes import read_notes
        from galaxy_tui.records.run_json import shown_json
        print(json.dumps(finite(shown_json(run, read_notes(run.dir))), indent=1, allow_nan=False))
        return 0
    from galaxy_tui.report import print_report
    print_report(run, Console(), answer)
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
            "macro F1": figure(item.macro_f1), "size": _compact(item.image_size),
            "epochs": _compact(item.epochs_trained),
            "seconds": figure(item.train_seconds_all_attempts, 1), "samples/s": _compact(item.samples_per_s),
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
    kind = kind_of_metrics(metrics)
    Console().print(f"{built.id}: {metrics.get('split', 'test')} {kind.headline_label} [bold]"
                    f"{metrics[kind.headline]:.4f}[/bold], validation {kind.headline_label} "
                    f"{metrics[kind.best_validation]:.4f}; weights ({scheme}, from validation): "
                    f"{weights}\n`galaxy-tui show {built.id}` for the rest; "
                    f"`galaxy-tui compare {' '.join(run_ids)} {built.id}` beside its members")
    return 0
