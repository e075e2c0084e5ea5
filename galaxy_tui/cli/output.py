"""What the headless commands share in how they print."""

from __future__ import annotations

import sys


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"galaxy-tui: warning: {warning}", file=sys.stderr)

def state_style(state: str) -> str:
    return {"finished": "green", "failed": "red", "killed": "red", "lost": "magenta", "stopped": "yellow"}.get(
        state, "cyan")
