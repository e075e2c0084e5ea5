"""A run as the UI and the reports see it: its events folded into curves, probe trials, OOMs, GPU samples.

Torch-free. Feed it events in order (`apply`); a resume drops the steps past the checkpoint it
resumed from, so curves never show work that was thrown away (the raw lines stay in events.jsonl).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_tui.events import Event, read_events


def batch_split(micro: int, accumulation: int, effective: int, world: int = 1) -> str:
    """How one optimizer step's batch is cut, as arithmetic that adds up: "128 x 2 = 256",
    "229 + 27 = 256" (the last micro-batch takes the rest), "(8 x 2) x 2 ranks = 32"."""
    per_rank = max(1, effective // max(1, world))
    last = per_rank - micro * (accumulation - 1)
    if last == micro:
        text = f"{micro} x {accumulation}"
    else:
        text = f"{micro} + {last}" if accumulation == 2 else f"{micro} x {accumulation - 1} + {last}"
    if world > 1:
        text = f"({text}) x {world} ranks"
    return f"{text} = {effective}"


def format_count(n: int) -> str:
    """A parameter count as people say it: "3.2 k", "14.4 M"."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def trainable_parts(e: Event) -> list[str]:
    """A finetune's trainable set in two short parts (a narrow pane puts each on its own line):
    "head + stages.3, stages.2", "2/5 blocks · 14.4 M of 15.0 M params"."""
    blocks, later = list(e.get("blocks") or []), int(e.get("unfreeze") or 0)
    count = f"{format_count(int(e.get('parameters', 0)))} of {format_count(int(e.get('total_parameters', 0)))} params"
    if blocks:
        return [f"head + {', '.join(blocks)}", f"{len(blocks)}/{e.get('of_blocks')} blocks · {count}"]
    return [f"head only: {count}",
            f"{later} block(s) unfreeze after epoch {e.get('frozen_epochs')}" if later else "every block stays frozen"]


def format_joules(joules: float) -> str:
    for unit, scale in (("MJ", 1e6), ("kJ", 1e3)):
        if joules >= scale:
            return f"{joules / scale:.1f} {unit}"
    return f"{joules:.0f} J"


@dataclass
class RunModel:
    steps: list[tuple[int, float]] = field(default_factory=list)              # (step, loss)
    lrs: list[tuple[int, float]] = field(default_factory=list)                # (step, learning rate)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    probe_trials: list[dict[str, Any]] = field(default_factory=list)
    probe_done: dict[str, Any] | None = None
    trainable: dict[str, Any] | None = None  # a finetune's trainable blocks, as of the latest change
    ooms: list[dict[str, Any]] = field(default_factory=list)
    gpu: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    host: list[dict[str, Any]] = field(default_factory=list)   # the worker's CPU and RAM, every 2 s
    prepare: tuple[int, int] | None = None
    last_step: dict[str, Any] | None = None
    started: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    events_seen: int = 0
    version: int = 0   # bumps on every change, so widgets repaint only when something moved

    @classmethod
    def of_run(cls, run_dir: Path) -> RunModel:
        """A run's whole events.jsonl, folded."""
        model = cls()
        model.apply(read_events(run_dir / "events.jsonl"))
        return model

    def energy_summary(self) -> str:
        """The training's energy so far from the epoch events: "12.3 kJ, 150 images/J (NVML energy counter)",
        or "energy N/A: <why>"."""
        known = [e for e in self.epochs if e.get("energy_j") is not None]
        note = str(self.epochs[-1].get("energy_note") or "") if self.epochs else ""
        if not known:
            return f"energy N/A: {note}" if note else ""
        joules = sum(float(e["energy_j"]) for e in known)
        rates = [float(e["images_per_j"]) for e in known if e.get("images_per_j")]
        per_joule = f", {rates[-1]:.1f} images/J" if rates else ""
        return f"energy {format_joules(joules)}{per_joule} ({note})"

    def epoch_series(self, x: str, y: str) -> tuple[list[float], list[float]]:
        """One per-epoch curve, leaving out epochs where the figure is unknown (null)."""
        points = [(e[x], e[y]) for e in self.epochs if e.get(y) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    def apply(self, events: list[Event]) -> None:
        for event in events:
            handler = getattr(self, f"_on_{event.get('type')}", None)
            if handler is not None:
                handler(event)
        self.events_seen += len(events)
        if events:
            self.version += 1

    def _on_started(self, e: Event) -> None:
        self.started, self.final = e, None
        if e.get("mode") != "resume":
            self.probe_trials, self.probe_done = [], None

    def _on_resumed(self, e: Event) -> None:
        step, epoch = int(e.get("step", 0)), int(e.get("epoch", 0))
        self.steps = [s for s in self.steps if s[0] <= step]
        self.lrs = [s for s in self.lrs if s[0] <= step]
        self.epochs = [x for x in self.epochs if int(x.get("epoch", 0)) <= epoch]

    def _on_step(self, e: Event) -> None:
        self.steps.append((int(e["step"]), float(e["loss"])))
        if isinstance(e.get("lr"), (int, float)):
            self.lrs.append((int(e["step"]), float(e["lr"])))
        self.last_step = e

    def _on_epoch(self, e: Event) -> None:
        self.epochs.append(e)

    def _on_prepare(self, e: Event) -> None:
        self.prepare = (int(e["done"]), int(e["total"]))

    def _on_probe_trial(self, e: Event) -> None:
        self.probe_trials.append(e)

    def _on_probe_done(self, e: Event) -> None:
        self.probe_done = e

    def _on_trainable(self, e: Event) -> None:
        self.trainable = e

    def _on_oom(self, e: Event) -> None:
        self.ooms.append(e)

    def _on_gpu(self, e: Event) -> None:
        samples = self.gpu.setdefault(int(e.get("index", 0)), [])
        samples.append(e)
        del samples[:-600]

    def _on_host(self, e: Event) -> None:
        self.host.append(e)
        del self.host[:-600]

    def _on_warning(self, e: Event) -> None:
        self.warnings.append(str(e.get("message", "")))

    def _on_finished(self, e: Event) -> None:
        self.final = e

    def _on_failed(self, e: Event) -> None:
        self.final = e

    def _on_killed(self, e: Event) -> None:
        self.final = e

    def _on_stopped(self, e: Event) -> None:
        self.final = e
