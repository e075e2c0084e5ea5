"""Follow a run from the terminal with a Rich progress display until it ends (headless `train`)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from galaxy_tui.events import Event, EventTail
from galaxy_tui.executors import local
from galaxy_tui.run_model import RunModel, batch_split, trainable_parts
from galaxy_tui.runs import run_info
from galaxy_tui.scores import score_of_epochs


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def event_line(event: Event) -> str | None:
    """The line the headless follower prints for an event, if it prints one."""
    kind = event["type"]
    if kind == "probe_trial":
        outcome = "fits" if event["fits"] else "does not fit"
        return f"  probe trial {event['trial']} ({event['phase']}): micro-batch {event['micro_batch']} {outcome}"
    if kind == "probe_done":
        return f"  micro-batch {batch_split(event['micro_batch'], event['accumulation'], event['effective_batch'])}"
    if kind == "epoch":
        score = score_of_epochs([event])
        return (f"  epoch {event['epoch']}: train loss {_figure(event['train_loss'])}  val loss "
                f"{_figure(event['val_loss'])}  {score.label} {_figure(event.get(score.key))}  "
                f"({event['seconds']:.1f}s)")
    if kind == "trainable":
        return f"  epoch {event['epoch']} trains {'; '.join(trainable_parts(event))}"
    if kind == "oom":
        return (f"  [yellow]OOM spike at step {event['step']}: micro-batch {event['micro_batch_before']} -> "
                f"{event['micro_batch_after']}[/yellow]")
    if kind in ("warning", "failed", "killed"):
        return f"  [{'yellow' if kind == 'warning' else 'red'}]{event.get('message')}[/]"
    return None


def earlier_attempts(events: list[Event]) -> str:
    """One line for the attempts before this one: how each ended and at which epoch."""
    ended: list[str] = []
    attempt, epoch, outcome = None, 0, "lost"
    for event in events:
        kind = event["type"]
        if kind == "started":
            if attempt is not None:
                ended.append(f"#{attempt} {outcome} (epoch {epoch})")
            attempt, outcome = event.get("attempt", len(ended) + 1), "lost"
        elif kind == "epoch":
            epoch = event["epoch"]
        elif kind in ("finished", "stopped", "failed", "killed"):
            outcome = kind
    if attempt is not None:
        ended.append(f"#{attempt} {outcome} (epoch {epoch})")
    return "earlier attempts: " + ", ".join(ended) if ended else ""


def follow_run(run_dir: Path, console: Console, poll_s: float = 0.3, attempt: int = 1) -> str:
    """Show progress until the run reaches a final state; return that state. For a resumed run
    (`attempt` > 1) the earlier attempts are summed up in one line instead of replayed."""
    tail, model = EventTail(run_dir / "events.jsonl"), RunModel()
    pending: list[Event] = []
    result = ""
    if attempt > 1:
        history = tail.read_new()
        cut = next((i for i, e in enumerate(history) if e["type"] == "started" and e.get("attempt") == attempt),
                   len(history))
        model.apply(history[:cut])
        summary = earlier_attempts(history[:cut])
        if summary:
            console.print(f"[dim]{summary}[/dim]")
        pending = history[cut:]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=None, info="")
        while True:
            events, pending = pending + tail.read_new(), []
            for event in events:
                line = event_line(event)
                if line:
                    console.print(line)
                if event["type"] == "boosted":  # a boost's result is a folder of its own: the details are there
                    result = str(event.get("folder") or "") or result
            model.apply(events)
            if model.prepare and model.last_step is None:
                done, total = model.prepare
                progress.update(task, description="preparing images", completed=done, total=total, info="")
            if model.last_step:
                s = model.last_step
                progress.update(task, description=f"epoch {s['epoch']}", completed=s["step_in_epoch"],
                                total=s["steps_per_epoch"], info=f"loss {s['loss']:.4f}  {s['samples_per_s']:.0f}/s")
            info = run_info(run_dir)
            if not info.is_live:
                progress.stop()
                style = "green" if info.state == "finished" else "red"
                console.print(f"run {info.id}: [{style}]{info.state}[/] {info.message}")
                if not local.wait_for_exit(run_dir, local.EXIT_WINDOW_S):
                    console.print(f"[yellow]its processes are still exiting after {local.EXIT_WINDOW_S:.0f} s; "
                                  f"a launch of the same run waits for them[/yellow]")
                if info.state == "finished":
                    console.print(f"details: galaxy-tui show {result or info.id}")
                return info.state
            time.sleep(poll_s)
