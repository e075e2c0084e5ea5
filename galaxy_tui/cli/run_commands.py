"""Headless run commands: `galaxy-tui train|evaluate|boost|stop|runs`, with Rich."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.cli.output import print_warnings, state_style
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import ensure_registry, registry_for_reading
from galaxy_tui.scores import score_named

if TYPE_CHECKING:
    from galaxy_tui.runs import RunInfo



def _ask_choice(experiment: str, previous: str) -> str | None:
    from rich.prompt import Prompt
    answer = Prompt.ask(f"Experiment {experiment} already has checkpoints (run {previous}). Resume, restart, "
                        f"skip (evaluate best) or cancel?", choices=["resume", "restart", "skip", "cancel"],
                        default="resume")
    return None if answer == "cancel" else answer

def train(workspace: Path, experiment: str, detach: bool, choice: str | None, devices: int | None,
          executor: str | None = None, attached: bool = False) -> int:
    from galaxy_tui.runs import latest_checkpointed_run, launch, stop_run
    registry = ensure_registry(workspace)
    registry.experiment(experiment)
    print_warnings(registry.warnings)
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
    return announce_and_follow(run, f"run [bold]{run.id}[/bold] ({run.dir}{job})", detach,
                                (lambda: stop_run(registry, run.id)) if attached else None)


def announce_and_follow(run: RunInfo, announcement: str, detach: bool,
                         stop: Callable[[], object] | None = None) -> int:
    """Say what started; follow it to its end unless detached (following.FINISHED, FAILED or STOPPED)."""
    from galaxy_tui.cli.following import follow_to_the_end
    console = Console()
    console.print(announcement)
    if detach:
        console.print(f"detached; follow it with `galaxy-tui` or `galaxy-tui show {run.id}`")
        return 0
    return follow_to_the_end(run.dir, run.id, run.attempt, console, stop)

def evaluate(workspace: Path, run_id: str, tta: bool, detach: bool, again: bool = False) -> int:
    from galaxy_tui.runs import get_run, reevaluate
    from galaxy_tui.task_kinds import kind_of_metrics
    registry = registry_for_reading(workspace)
    metrics = read_metrics(get_run(registry, run_id).dir) or {}
    kind = kind_of_metrics(metrics)
    measured = (metrics.get("tta") or {}).get(kind.headline)
    if tta and isinstance(measured, (int, float)) and not again:  # minutes of work for the figure it has
        Console().print(f"run {run_id}: 8-view TTA is already measured: {kind.headline_label} {measured:.4f} "
                        f"(galaxy-tui show {run_id}); add --again to evaluate it again")
        return 0
    run = reevaluate(registry, run_id, tta)
    return announce_and_follow(run, f"evaluating run [bold]{run.id}[/bold] again"
                                     f"{' with the 8 flips and turns' if tta else ''} (attempt {run.attempt})", detach)

def boost(workspace: Path, run_id: str, booster: str, detach: bool) -> int:
    from galaxy_tui.runs import boost_run
    run = boost_run(registry_for_reading(workspace), run_id, booster)
    return announce_and_follow(run, f"run [bold]{run.id}[/bold]: extracting its best model's features and "
                                     f"fitting {booster} (attempt {run.attempt}); the result gets a folder of its "
                                     f"own (boosted-…)", detach)

def list_runs(workspace: Path, filter_text: str = "", as_json: bool = False) -> int:
    import time

    from galaxy_tui.records.notes import read_notes
    from galaxy_tui.records.run_filter import parse_filter, run_facts
    from galaxy_tui.runs import find_runs
    registry = registry_for_reading(workspace)
    runs = find_runs(registry)
    notes = {run.id: read_notes(run.dir) for run in runs}
    if filter_text.strip():
        wanted = parse_filter(filter_text)
        runs = [run for run in runs if wanted(run_facts(run, read_metrics(run.dir),
                                                        notes[run.id].tags, notes[run.id].note))]
    if as_json:
        import json

        from galaxy_tui.records.run_json import run_json
        print(json.dumps([run_json(run, notes[run.id]) for run in runs], indent=1, allow_nan=False))
        return 0
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
        table.add_row(row[0], row[1], f"[{state_style(row[2].split()[0])}]{row[2]}[/]", *row[3:])
    Console().print(table)
    return 0

def stop(workspace: Path, run_id: str, wait_s: float) -> int:
    """Ask a run to stop; unless `wait_s` is 0, return once its processes are gone (exit 1 if they are not)."""
    from galaxy_tui.executors.jobs import wait_for_end
    from galaxy_tui.runs import run_info, stop_run
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
