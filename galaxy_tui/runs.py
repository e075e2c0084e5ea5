"""Run lifecycle: create a run folder, launch it through the supervisor, find runs, tell their state, stop.

Torch-free: the UI and the headless commands use it. The run folders are the whole truth: nothing
about runs is written to experiments.toml.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_tui.atomic import atomic_write_bytes, atomic_write_json, locked, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES
from galaxy_tui.executors import jobs
from galaxy_tui.executors.local import number
from galaxy_tui.frozen_run import DERIVED, read_config, task_section, write_config
from galaxy_tui.model_names import is_encoder_name
from galaxy_tui.registry import EXECUTORS, Registry
from galaxy_tui.scores import score_named

if TYPE_CHECKING:
    from galaxy_tui.data.overrides import Overrides

# Keys that may change between attempts without invalidating a checkpoint.
_HASH_EXEMPT = ("epochs", "early_stopping", "checkpoint_minutes", "mistakes", "devices", "micro_batch",
                "vram_margin", "max_steps_per_epoch", "tta")


@dataclass(frozen=True)
class RunInfo:
    id: str
    dir: Path
    experiment: str
    state: str
    attempt: int = 1
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    best_metric: float | None = None
    started: float = 0.0
    updated: float = 0.0
    message: str = ""
    pid: int | None = None
    metric: str = "val_acc"   # what best_metric measures (scores.SCORES)
    job: str = ""             # the Slurm job of the attempt ("": a local run)
    reason: str = ""          # why it is pending in Slurm's queue

    @property
    def state_text(self) -> str:
        """"pending (Resources)": the state, and for a queued Slurm job why it waits."""
        return f"{self.state} ({self.reason})" if self.reason else self.state

    @property
    def best_text(self) -> str:
        """The best validation score for a narrow column: "0.912", or "0.085↓" where lower is better."""
        if self.best_metric is None:
            return "-"
        return f"{self.best_metric:.3f}" + ("" if score_named(self.metric).higher_is_better else "↓")

    @property
    def epoch_text(self) -> str:
        """"3/8", or "-" where no epochs are known yet (or ever: an ensemble trains none)."""
        return f"{self.epoch}/{self.epochs}" if self.epochs else "-"

    @property
    def is_live(self) -> bool:
        return self.state not in (*FINAL_STATES, "lost")


def config_hash(experiment: dict[str, Any], dataset: dict[str, Any], overrides: str | None = None) -> str:
    """Identifies what a checkpoint was trained on; keys that may change on resume are left out. `overrides`:
    the digest of the dataset's standing decisions (absent without any, so earlier runs keep their hash)."""
    relevant = {k: v for k, v in experiment.items() if k not in _HASH_EXEMPT}
    text = json.dumps({"experiment": relevant, "dataset": dataset, **({"overrides": overrides} if overrides else {})},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dataset_table(registry: Registry, name: str) -> dict[str, Any]:
    spec = registry.dataset(name)
    return {"name": spec.name, **spec.options}


def run_config(registry: Registry, experiment: str) -> dict[str, Any]:
    table = registry.experiment(experiment).table()
    dataset = _dataset_table(registry, table["dataset"])
    decisions = workspace_overrides(registry, table["dataset"])
    digest = decisions.digest if decisions else None
    return {
        "run": {"experiment": experiment, "workspace": str(registry.workspace),
                "cache_dir": str(registry.cache_dir), "config_hash": config_hash(table, dataset, digest)},
        "experiment": table,
        "dataset": dataset,
        **({"overrides": {"digest": digest, "decisions": len(decisions.decisions)}} if decisions else {}),
    }


def workspace_overrides(registry: Registry, dataset: str) -> Overrides | None:
    from galaxy_tui.data.overrides import overrides_file, read_overrides  # pandas: only when launching
    return read_overrides(overrides_file(registry.workspace, dataset))


def _freeze_overrides(registry: Registry, run_dir: Path, dataset: str) -> None:
    """The run keeps the decisions it was launched with (its worker reads this copy, never the live file)."""
    from galaxy_tui.data.overrides import RUN_COPY, overrides_file
    copy = run_dir / RUN_COPY
    source = overrides_file(registry.workspace, dataset)
    if source.exists():
        atomic_write_bytes(copy, source.read_bytes())
    else:
        copy.unlink(missing_ok=True)


def new_run_dir(runs_dir: Path, experiment: str) -> Path:
    """A fresh folder, created atomically: two launches in the same second get two folders."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        run_dir = runs_dir / (f"{experiment}-{stamp}" if n == 1 else f"{experiment}-{stamp}-{n}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    raise GalaxyError(f"cannot create a run folder for {experiment!r} in {runs_dir}.")


def _status(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "status.json") or {}


def run_info(run_dir: Path) -> RunInfo:
    status = _status(run_dir)
    best = number(status, "best_metric", -1.0)
    pid = status.get("pid")
    state, message, reason = jobs.state(run_dir, status)
    return RunInfo(
        id=run_dir.name, dir=run_dir, experiment=str(status.get("experiment", "")),
        state=state, attempt=int(number(status, "attempt", 1)),
        epoch=int(number(status, "epoch", 0)), epochs=int(number(status, "epochs", 0)),
        step=int(number(status, "step", 0)),
        best_metric=float(best) if "best_metric" in status and best >= 0 else None,
        started=float(number(status, "started", 0)), updated=float(number(status, "updated", 0)),
        message=message, pid=pid if isinstance(pid, int) else None,
        metric=score_named(status.get("metric") if isinstance(status.get("metric"), str) else None).key,
        job=str(status.get("slurm_job") or ""), reason=reason,
    )


def find_runs(registry: Registry) -> list[RunInfo]:
    """Every run folder in the workspace, newest first."""
    if not registry.runs_dir.is_dir():
        return []
    runs = [run_info(d) for d in registry.runs_dir.iterdir()
            if not d.name.startswith(".") and (d / "status.json").exists()]
    return sorted(runs, key=lambda r: r.started, reverse=True)


RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_RUN_ID = 200  # a folder name must fit the file system's 255 bytes


def get_run(registry: Registry, run_id: str) -> RunInfo:
    """The run a person names: a folder directly inside runs_dir (or the one folder whose name starts
    with what they typed). Never a path: `../x`, `/etc` and `a/b` name no run."""
    if not RUN_ID.fullmatch(run_id) or len(run_id) > MAX_RUN_ID:
        raise GalaxyError(f"{run_id[:60]!r}{'…' if len(run_id) > 60 else ''} is not a run id (letters, digits, '.', "
                          f"'_', '-', at most {MAX_RUN_ID}; no paths); "
                          f"`galaxy-tui runs` lists them.")
    run_dir = registry.runs_dir / run_id
    if not (run_dir / "status.json").exists():
        matches = [d for d in registry.runs_dir.glob(f"{run_id}*") if (d / "status.json").exists()] \
            if registry.runs_dir.is_dir() else []
        if len(matches) > 1:
            names = ", ".join(sorted(d.name for d in matches)[:4]) + (" …" if len(matches) > 4 else "")
            raise GalaxyError(f"{run_id!r} starts {len(matches)} run ids ({names}); type more of the one you mean.")
        if not matches:
            raise GalaxyError(f"no run {run_id!r} in {registry.runs_dir}; `galaxy-tui runs` lists them.")
        run_dir = matches[0]
    return run_info(run_dir)


def has_checkpoint(run_dir: Path) -> bool:
    return any((run_dir / "checkpoints" / name).exists() for name in ("last.pt", "best.pt"))


def newest_live_run(runs: Iterable[RunInfo], experiment: str) -> RunInfo | None:
    """The experiment's newest run that is running (or waiting to): it cannot be resumed or evaluated now."""
    live = [run for run in runs if run.experiment == experiment and run.is_live]
    return max(live, key=lambda run: run.started, default=None)


def latest_checkpointed_run(registry: Registry, experiment: str) -> RunInfo | None:
    for run in find_runs(registry):
        if run.experiment == experiment and has_checkpoint(run.dir):
            return run
    return None


def _start(registry: Registry, run_dir: Path, mode: str, attempt: int, devices: int,
           executor: str = "local") -> RunInfo:
    experiment = str(_status(run_dir).get("experiment", ""))
    settings = registry.slurm_of(experiment) if experiment in registry.experiments else registry.slurm
    jobs.start(run_dir, jobs.JobSpec(jobs.TRAIN_WORKER, mode, attempt, devices, registry.workspace, executor, settings),
               lambda previous: {"experiment": previous.get("experiment", run_dir.name),
                                 "before": _ended_as(previous)})
    return run_info(run_dir)


def _ended_as(status: dict[str, Any]) -> str:
    """How the previous attempt ended ("" for a new run): a stopped re-evaluation of a finished run puts it back."""
    state = status.get("state")
    return state if isinstance(state, str) and state in FINAL_STATES else ""


def preflight(registry: Registry, experiment: str, saved_split: Path | None = None,
              fresh: bool = True) -> dict[str, Any]:
    """What the worker would fail on at once, found before any run folder exists: a dataset that does
    not load (missing file, column, HDF5 dataset), a class with no galaxies, an empty part of the split, an image
    cache the disk cannot hold, an encoder timm lacks or whose weights are missing offline (`fresh`: a new run,
    which starts from the pretrained weights; a resume starts from its checkpoint). Returns the task section
    config.toml freezes (the classes, a vote-fraction run's decision tree)."""
    from galaxy_tui.data.cache import check_cache_space  # pandas/h5py: only when launching
    from galaxy_tui.data.sources import load_dataset
    from galaxy_tui.data.splits import labelled_split
    exp = registry.experiment(experiment)
    spec = registry.dataset(exp.dataset)
    dataset = load_dataset(spec, registry.cache_dir)
    chosen = labelled_split(dataset, exp, saved_split, workspace_overrides(registry, exp.dataset))
    check_cache_space(dataset, list(chosen.frame["ref"]), exp.image_size, registry.cache_dir,
                      float(spec.options.get("crop", 1.0)))
    if is_encoder_name(exp.model):
        _check_encoder(exp.model, exp.pretrained and fresh, registry.workspace / Path(exp.weights).expanduser()
                       if exp.weights and fresh else None, registry.workspace)
    return task_section(dataset.classes, chosen.tree)


def _check_encoder(name: str, pretrained: bool, weights: Path | None, workspace: Path) -> None:
    """timm's model list and the weights lookups need torch: asked of a short-lived process (a few seconds)."""
    argv = [sys.executable, "-m", "galaxy_tui.train.encoders", name, *(["--pretrained"] if pretrained else []),
            *(["--weights", str(weights)] if weights else [])]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=workspace,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return  # the worker finds out and says so
    if done.returncode == 2:
        raise GalaxyError(done.stderr.strip())


def launch(registry: Registry, experiment: str, choice: str | None = None, devices: int | None = None,
           executor: str | None = None) -> RunInfo:
    """Start a run of `experiment`. If it already has checkpoints, `choice` must say what to do.
    One launch per experiment at a time (a lock between processes): two `--resume` started at the same
    instant cannot both start a worker in one run folder."""
    try:
        registry.runs_dir.mkdir(parents=True, exist_ok=True)
        with locked(registry.runs_dir / f".launch-{experiment}"):
            return _launch(registry, experiment, choice, devices, executor)
    except OSError as exc:  # a full disk, a read-only or foreign folder: say which and why
        where = exc.filename or registry.runs_dir
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GalaxyError(f"no space left on {Path(where).parent} to start the run; free some space.") from None
        raise GalaxyError(f"cannot write {where}: {exc.strerror or exc}; check the folder's permissions.") from None


def _launch(registry: Registry, experiment: str, choice: str | None, devices: int | None,
            executor: str | None) -> RunInfo:
    config = run_config(registry, experiment)
    devices = devices or int(config["experiment"]["devices"])
    executor = executor or registry.executor_of(experiment)
    if executor not in EXECUTORS:
        raise GalaxyError(f"executor {executor!r} is unknown; use one of: {', '.join(EXECUTORS)}")
    live = newest_live_run(find_runs(registry), experiment)
    if live is not None and choice != "restart":
        raise GalaxyError(f"experiment {experiment!r} is {live.state} now in run {live.id}: follow it with "
                          f"`galaxy-tui show {live.id}`; to resume or evaluate it, stop it first (galaxy-tui stop "
                          f"{live.id}); --restart starts another run beside it.")
    previous = latest_checkpointed_run(registry, experiment)
    if previous is not None and choice is None:
        raise GalaxyError(f"experiment {experiment!r} already has checkpoints in run {previous.id}; choose "
                          f"--resume (continue it), --restart (a new run) or --skip (evaluate its best checkpoint).")
    if previous is not None and choice in ("resume", "skip"):
        frozen = read_config(previous.dir)
        if frozen["run"]["config_hash"] != config["run"]["config_hash"]:
            raise GalaxyError(f"experiment {experiment!r} changed since run {previous.id} was trained "
                              f"({_changed_keys(frozen, config)}); its checkpoint does not fit. Use --restart.")
        config["task"] = frozen.get("task", {})
        if choice == "resume":
            _refuse_resume_without_last(previous)
            config["task"] = preflight(registry, experiment, previous.dir / "split.csv", fresh=False)
        config["run"]["id"] = previous.id
        write_config(previous.dir, config)
        _freeze_overrides(registry, previous.dir, config["dataset"]["name"])
        mode = "resume" if choice == "resume" else "evaluate"
        return _start(registry, previous.dir, mode, previous.attempt + 1, devices, executor)
    if choice in ("resume", "skip"):
        raise GalaxyError(f"experiment {experiment!r} has no checkpoint to {choice}; run it without --{choice}.")
    config["task"] = preflight(registry, experiment)
    run_dir = new_run_dir(registry.runs_dir, experiment)
    try:
        (run_dir / "checkpoints").mkdir()
        (run_dir / "results").mkdir()
        config["run"]["id"] = run_dir.name
        write_config(run_dir, config)
        _freeze_overrides(registry, run_dir, config["dataset"]["name"])
        atomic_write_json(run_dir / "status.json", {"experiment": experiment, "started": time.time()})
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # a refused launch leaves no empty run behind
        raise
    return _start(registry, run_dir, "train", 1, devices, executor)


def _refuse_resume_without_last(run: RunInfo) -> None:
    """A resume continues from last.pt; without it, training would start again at epoch 1 and overwrite best.pt."""
    if not (run.dir / "checkpoints" / "last.pt").exists():
        raise GalaxyError(f"run {run.id} has no last checkpoint ({run.dir}/checkpoints/last.pt is missing), so it "
                          f"cannot be resumed; its best.pt is kept. --skip evaluates best.pt; --restart starts a new "
                          f"run in a folder of its own, leaving {run.id} and its best.pt as they are.")


def reevaluate(registry: Registry, run_id: str, tta: bool) -> RunInfo:
    """Evaluate a finished run's best checkpoint again in its own folder (a new attempt), with or without
    test-time augmentation; the rest of its frozen configuration is untouched."""
    return _again(registry, run_id, "evaluate", lambda config: config["experiment"].update(tta=tta))


def boost_run(registry: Registry, run_id: str, booster: str) -> RunInfo:
    """Extract a finished run's features and fit a booster on them (a new attempt of the run; the result is a
    folder of its own)."""
    def choose(config: dict[str, Any]) -> None:
        config["boost"] = {"booster": booster}
    return _again(registry, run_id, "boost", choose, devices=1)


def curate_run(registry: Registry, run_id: str, labelled_only: bool = False, layout: str = "pca",
               chunk: int | None = None, again: bool = False) -> RunInfo:
    """Embed every galaxy of a finished run's dataset with its best model and rank them for curation (a new
    attempt of the run; a stopped one continues its embedding, saved every `chunk` galaxies; `again`: the
    finished embedding is made anew — dropped only once the run is known not to be live)."""
    def choose(config: dict[str, Any]) -> None:
        config["curate"] = {"labelled_only": labelled_only, "map": layout, **({"chunk": chunk} if chunk else {})}
        if again:
            from galaxy_tui.curation.embedding import EMBEDDING, curation_folder
            (curation_folder(run_dir) / EMBEDDING).unlink(missing_ok=True)
    run_dir = get_run(registry, run_id).dir
    return _again(registry, run_id, "curate", choose, devices=1)


def _again(registry: Registry, run_id: str, mode: str, change: Callable[[dict[str, Any]], None],
           devices: int | None = None) -> RunInfo:
    """A finished run's worker started again on its best checkpoint, its frozen config changed by `change`."""
    run = get_run(registry, run_id)
    with locked(registry.runs_dir / f".launch-{run.experiment}"):
        run = run_info(run.dir)
        if run.is_live:
            raise GalaxyError(f"run {run.id} is still {run.state}; stop it first (galaxy-tui stop {run.id}).")
        config = read_config(run.dir)
        for derived in DERIVED:
            if derived in config:
                raise GalaxyError(f"{run.id} is {'an ensemble' if derived == 'ensemble' else 'a boosted result'}: "
                                  f"it has no network of its own; {config[derived].get('run') or 'its members'} has.")
        if not (run.dir / "checkpoints" / "best.pt").exists():
            raise GalaxyError(f"run {run.id} has no best checkpoint to use (state {run.state}).")
        change(config)
        write_config(run.dir, config)
        return _start(registry, run.dir, mode, run.attempt + 1, devices or int(config["experiment"]["devices"]))


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> str:
    changed = [f"{k}: {old['experiment'].get(k)!r} -> {v!r}" for k, v in new["experiment"].items()
               if k not in _HASH_EXEMPT and old["experiment"].get(k) != v]
    if old.get("dataset") != new.get("dataset"):
        changed.append("the dataset table")
    if old.get("overrides") != new.get("overrides"):
        changed.append("the dataset's overrides (excluded or relabelled galaxies)")
    return ", ".join(changed) or "configuration"


def stop_run(registry: Registry, run_id: str) -> RunInfo:
    """Ask the worker to finish its step, checkpoint and exit; the run becomes `stopped`."""
    run = get_run(registry, run_id)
    if not run.is_live:
        raise GalaxyError(f"run {run.id} is {run.state}, not running; nothing to stop.")
    jobs.stop(run.dir, _status(run.dir))
    return run


def delete_run(registry: Registry, run_id: str) -> None:
    """Remove an ended run's folder. Only a whole id (never a prefix) names a run to delete. The folder is
    first renamed to a hidden name, so an interrupted delete leaves no half run in the listing."""
    run_dir = registry.runs_dir / run_id
    if not RUN_ID.fullmatch(run_id) or len(run_id) > MAX_RUN_ID or not (run_dir / "status.json").exists():
        raise GalaxyError(f"no run {run_id!r} in {registry.runs_dir} (a delete needs the whole id); nothing deleted.")
    run = run_info(run_dir)
    if run.is_live:
        raise GalaxyError(f"run {run.id} is {run.state}: stop it first; nothing deleted.")
    doomed = registry.runs_dir / f".deleting-{run_id}"
    os.rename(run_dir, doomed)
    for leftover in registry.runs_dir.glob(".deleting-*"):  # this one, and any an earlier crash left
        shutil.rmtree(leftover, ignore_errors=True)
