"""Is this the process we started? A pid alone is not proof (pids are reused): compare start times.

Stdlib only (the supervisor uses it). Linux /proc.
"""

from __future__ import annotations

from pathlib import Path


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status remains
        return None
    return int(fields[19])


def is_alive(pid: object, ticks: object) -> bool:
    """Whether `pid` runs and started at `ticks`; anything else (missing, damaged values) is not alive."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(ticks, int):
        return False
    return start_ticks(pid) == ticks
