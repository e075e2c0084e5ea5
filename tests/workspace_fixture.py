"""A workspace with a tiny synthetic dataset and experiments that train in seconds on a CPU."""

from __future__ import annotations

import time
from pathlib import Path

import tomli_w

from galaxy_tui.events import read_events
from galaxy_tui.registry import Registry, load_registry
from galaxy_tui.runs import RunInfo, run_info


def tiny_workspace(root: Path, epochs: int = 2, count: int = 400, extra: dict | None = None) -> Registry:
    experiment = {
        "dataset": "tiny", "model": "tiny-cnn", "image_size": 32, "epochs": epochs,
        "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-2}, "micro_batch": 16,
        "effective_batch": 32, "labels": {"threshold": 0.7}, "mistakes": 4, **(extra or {}),
    }
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
           "datasets": {"tiny": {"kind": "synthetic", "count": count, "size": 32, "seed": 3}},
           "experiments": {"tiny": experiment}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "experiments.toml").write_text(tomli_w.dumps(raw))
    return load_registry(root / "experiments.toml")


def wait_for(predicate, timeout: float = 120.0, poll: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def wait_final(run: RunInfo, timeout: float = 180.0) -> RunInfo:
    """Wait until the run is in a final state and its supervisor has recorded the worker's exit."""
    def settled() -> RunInfo | None:
        info = run_info(run.dir)
        exits = sum(e["type"] == "exited" for e in read_events(run.dir / "events.jsonl"))
        return info if not info.is_live and exits >= info.attempt else None
    return wait_for(settled, timeout)


def rank_lines(run_dir: Path, word: str) -> dict[int, list[str]]:
    """What each rank logged about `word` (ranks/<attempt>/.../<rank>/stdout.log), without the rank prefix."""
    lines: dict[int, list[str]] = {}
    for log in (run_dir / "ranks").rglob("stdout.log"):
        for line in log.read_text().splitlines():
            head, _, rest = line.partition(": ")
            if head.startswith("rank ") and rest.startswith(word):
                lines.setdefault(int(head.split()[1]), []).append(rest)
    return lines
