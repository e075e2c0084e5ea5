"""What changed between two runs: their frozen configs, key by key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from galaxy_tui.frozen_run import read_config

# Where the run happened, not what it was: different for every run, so never a "change".
_PLACE_KEYS = ("run.id", "run.workspace", "run.cache_dir", "run.config_hash")
_FOLLOWS = "task."  # the classes and tree frozen from the dataset: they follow from what is compared
MISSING = object()


@dataclass(frozen=True)
class Change:
    key: str      # dotted: experiment.optimizer.lr
    before: Any   # MISSING when the first run has no such key
    after: Any


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_changes(first: dict[str, Any], second: dict[str, Any]) -> list[Change]:
    a, b = flatten(first), flatten(second)
    keys = sorted(key for key in (set(a) | set(b)) - set(_PLACE_KEYS) if not key.startswith(_FOLLOWS))
    return [Change(key, a.get(key, MISSING), b.get(key, MISSING)) for key in keys
            if a.get(key, MISSING) != b.get(key, MISSING)]


def run_changes(first_dir: Path, second_dir: Path) -> list[Change]:
    """Raises GalaxyError when a run's config.toml cannot be read."""
    return config_changes(read_config(first_dir), read_config(second_dir))


def shown(value: Any) -> str:
    return "(not set)" if value is MISSING else repr(value) if isinstance(value, str) else str(value)


def changes_table(changes: list[Change], first: str, second: str, **options: Any) -> Table:
    """The changed keys, the first run's values in red, the second's in green (`first`/`second`: column
    headings; `options` go to rich's Table)."""
    table = Table(**options)
    table.add_column("key", no_wrap=True)
    table.add_column(first, ratio=1, overflow="fold")
    table.add_column(second, ratio=1, overflow="fold")
    for change in changes:
        table.add_row(change.key, Text(shown(change.before), style="red"), Text(shown(change.after), style="green"))
    return table
