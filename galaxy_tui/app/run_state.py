"""How a run's state looks wherever it is shown (the runs list, the Monitor's header)."""

from __future__ import annotations

from rich.text import Text

STATE_STYLES = {"finished": "bold green", "failed": "bold red", "killed": "bold red", "lost": "bold magenta",
                "stopped": "bold yellow", "training": "bold cyan", "probing": "bold cyan",
                "preparing": "cyan", "evaluating": "cyan", "queued": "dim", "submitted": "dim",
                "pending": "yellow"}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def before_the_worker(state: str) -> str:
    """What a live run's empty log and gauges say until its worker writes: a Slurm job waits for Slurm."""
    return "waiting for Slurm…" if state in ("submitted", "pending") else "starting the worker…"
