"""experiments.toml: load into typed objects, validate, and edit the person's file in place.

The file holds only what the person decided (datasets, experiments, workspace); runs live in their
folders. Every change is a function applied to the freshly re-read document under an exclusive lock,
through tomlkit, so only the changed values change: comments, order, inline tables and the spelling
of numbers (`3e-4`) stay as written, unknown keys survive, and two processes saving at once lose
neither change. The file's mode is kept and a symlink is written through to its target.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_tui.atomic import atomic_write_bytes, locked
from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import MODEL_NAMES, is_encoder_name, is_model_name

if TYPE_CHECKING:
    import tomlkit

REGISTRY_FILE = "experiments.toml"

DATASET_KINDS: dict[str, tuple[str, ...]] = {
    # kind -> keys that must be present in its table
    "synthetic": (),
    "galaxy10-h5": ("path",),
    "galaxy-mnist-h5": ("train", "test"),
    "gz2-hart16": ("catalog", "mapping", "images"),
    "kaggle-gz2": ("solutions", "images"),
    "image-folder": ("path",),
}
# Kinds whose classes come from the files (a folder per class, a label column), not from volunteers' votes:
# the labelling keys (threshold, votes, artifact) do not apply to them.
FIXED_LABEL_KINDS = ("galaxy10-h5", "galaxy-mnist-h5", "image-folder")
DATASET_OPTIONAL: dict[str, tuple[str, ...]] = {
    "synthetic": ("count", "size", "seed"),
    "gz2-hart16": ("fractions",),
    "image-folder": ("merge", "exclude"),
}
COMMON_KEYS = ("kind", "crop", "notes", "name")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_NAME = 100
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SAMPLERS = ("weighted", "class-weights", "none")
SCHEDULERS = ("cosine", "plateau", "none")
OPTIMIZERS = ("adamw", "sgd")
TASKS = ("classification", "vote-fractions")
EXECUTORS = ("local", "slurm")
LOSSES = {"classification": ("cross-entropy",), "vote-fractions": ("mse", "question-ce", "dirichlet-multinomial")}
VOTE_KINDS = ("synthetic", "gz2-hart16", "kaggle-gz2")
COUNTLESS_KINDS = ("kaggle-gz2",)  # vote fractions without the volunteers' counts


@dataclass(frozen=True)
class Labelling:
    threshold: float = 0.8
    min_classifications: int = 10
    max_artifact: float = 0.5


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str
    options: dict[str, Any]
    base_dir: Path

    def path(self, key: str) -> Path:
        """An option that names a file or folder, resolved against the workspace."""
        return (self.base_dir / str(self.options[key])).expanduser()


@dataclass(frozen=True)
class SlurmSettings:
    """How a run is asked of Slurm ([workspace.slurm], each key overridable in [experiments.NAME.slurm])."""
    partition: str = ""
    account: str = ""
    time: str = ""              # Slurm's format: "MM", "HH:MM:SS", "D-HH:MM:SS"; "": the partition's default
    nodes: int = 1
    gpus_per_node: int = 0      # 0: no GPUs asked; the tasks per node are then the experiment's devices
    cpus_per_task: int = 0      # 0: Slurm's default
    mem: str = ""               # per node, e.g. "64G"
    requeue: bool = True        # a preempted job goes back in the queue and resumes from last.pt
    extra: tuple[str, ...] = ()  # more sbatch options, e.g. ["--qos=normal", "--constraint=a100"]


SLURM_KEYS = tuple(SlurmSettings.__dataclass_fields__)


@dataclass(frozen=True)
class Finetune:
    """Train the head alone for `frozen_epochs`, then also the top `unfreeze_blocks` blocks (-1: all), each block
    down from the top at `lr_decay` times the learning rate of the one above it (Zoobot's recipe)."""
    frozen_epochs: int = 0
    unfreeze_blocks: int = 0
    lr_decay: float = 0.75

    def table(self) -> dict[str, Any]:
        return {"frozen_epochs": self.frozen_epochs,
                "unfreeze_blocks": "all" if self.unfreeze_blocks < 0 else self.unfreeze_blocks,
                "lr_decay": self.lr_decay}


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    task: str = "classification"
    loss: str = "cross-entropy"
    questions: tuple[str, ...] = ()   # vote-fractions: the decision tree's questions to predict (empty: all)
    labels: Labelling = Labelling()
    model: str = "tiny-cnn"
    pretrained: bool = False
    weights: str = ""  # a timm/zoobot encoder's weights from this file (.safetensors or .pt), as written
    finetune: Finetune | None = None  # None: every weight trains from the first step
    executor: str = ""                # "": the workspace's
    slurm: tuple[tuple[str, Any], ...] = ()  # this experiment's [slurm] keys over the workspace's
    image_size: int = 64
    epochs: int = 10
    optimizer: str = "adamw"
    lr: float = 3e-4
    weight_decay: float = 1e-2
    momentum: float = 0.9
    sampler: str = "weighted"
    micro_batch: int | str = "auto"
    effective_batch: int = 64
    precision: str = "auto"
    channels_last: bool = True
    tf32: bool = True
    devices: int = 1
    seed: int = 0
    label_smoothing: float = 0.05
    scheduler: str = "cosine"
    grad_clip: float = 1.0
    early_stopping: int = 0
    augment: bool = True
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    vram_margin: float = 0.10
    checkpoint_minutes: float = 10.0
    mistakes: int = 24
    max_steps_per_epoch: int = 0
    tta: bool = False  # evaluate also over the 8 flips and quarter turns

    def table(self) -> dict[str, Any]:
        """The experiment as a TOML table (as written to a run's frozen config)."""
        return {
            "dataset": self.dataset,
            "task": self.task,
            "loss": self.loss,
            "questions": list(self.questions),
            "labels": {
                "threshold": self.labels.threshold,
                "min_classifications": self.labels.min_classifications,
                "max_artifact": self.labels.max_artifact,
            },
            "model": self.model,
            "pretrained": self.pretrained,
            # absent when unused: older runs' config hashes hold
            **({"weights": self.weights} if self.weights else {}),
            **({"finetune": self.finetune.table()} if self.finetune else {}),
            "image_size": self.image_size,
            "epochs": self.epochs,
            "optimizer": {"name": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                          "momentum": self.momentum},
            "sampler": self.sampler,
            "micro_batch": self.micro_batch,
            "effective_batch": self.effective_batch,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "tf32": self.tf32,
            "devices": self.devices,
            "seed": self.seed,
            "label_smoothing": self.label_smoothing,
            "scheduler": self.scheduler,
            "grad_clip": self.grad_clip,
            "early_stopping": self.early_stopping,
            "augment": self.augment,
            "split": list(self.split),
            "vram_margin": self.vram_margin,
            "checkpoint_minutes": self.checkpoint_minutes,
            "mistakes": self.mistakes,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "tta": self.tta,
        }


@dataclass
class Registry:
    path: Path
    raw: dict[str, Any]
    runs_dir: Path
    cache_dir: Path
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    experiments: dict[str, Experiment] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # keys it does not know: kept, but said
    executor: str = "local"
    slurm: SlurmSettings = SlurmSettings()

    @property
    def workspace(self) -> Path:
        return self.path.parent

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            known = ", ".join(sorted(self.experiments)) or "none"
            raise GalaxyError(f"{self.path}: no experiment named {name!r} (known: {known}). "
                              f"Add an [experiments.{name}] table or pick one of those.")
        return self.experiments[name]

    def executor_of(self, experiment: str) -> str:
        return self.experiment(experiment).executor or self.executor

    def slurm_of(self, experiment: str) -> SlurmSettings:
        """The workspace's Slurm settings with the experiment's own keys over them."""
        return replace(self.slurm, **dict(self.experiment(experiment).slurm))

    def dataset(self, name: str) -> DatasetSpec:
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise GalaxyError(f"{self.path}: no dataset named {name!r} (known: {known}).")
        return self.datasets[name]


# ---------------------------------------------------------------- parsing

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GalaxyError(f"{path}: file not found. Run galaxy-tui in a workspace folder, or pass "
                          f"--workspace DIR.") from None
    except IsADirectoryError:
        raise GalaxyError(f"{path} is a folder, where galaxy-tui keeps its registry file; move it away (or use "
                          f"--workspace DIR for another workspace).") from None
    except OSError as exc:
        raise GalaxyError(f"cannot read {path}: {exc.strerror or exc}; check its permissions.") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise GalaxyError(f"{path}: byte {exc.start} (line {line}) is not UTF-8 ({exc.object[exc.start]:#04x}); "
                          f"TOML files are UTF-8: re-save it as UTF-8. Nothing was changed.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_POSITION.search(str(exc))
        position = f"line {where.group(1)}, column {where.group(2)}" if where else "unknown position"
        reason = _TOML_POSITION.sub("", str(exc)).strip()
        raise GalaxyError(f"{path}: TOML syntax error at {position}: {reason}. Fix the file; "
                          f"nothing was changed.") from None


class FieldError(GalaxyError):
    """A value of experiments.toml that does not validate, with where it is: a form can put the message at
    the field (`table` "experiments.gz2.optimizer", `key` "lr", `problem` "= -1.0 must be positive")."""

    def __init__(self, message: str, table: str, key: str, problem: str):
        super().__init__(message)
        self.table, self.key, self.problem = table, key, problem


_KIND_NAMES = {int: "a whole number", float: "a number", str: "a string", dict: "a table", list: "a list",
               bool: "true or false"}


class _Table:
    """Typed access to one TOML table, with errors that name the table and key."""

    def __init__(self, path: Path, name: str, data: Any, warnings: list[str] | None = None):
        self.file = path
        self.name = name
        self.warnings = warnings if warnings is not None else []
        if not isinstance(data, dict):
            self.fail("", f"must be a table, not {type(data).__name__}")
        self.data: dict[str, Any] = data

    def expect(self, known: tuple[str, ...] | list[str]) -> None:
        """Unknown keys are kept (a newer version may know them) but said, with the likely intended key."""
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
                self.warnings.append(f"{self.file}: [{self.name}] {key!r} is not a key this version knows "
                                     f"(kept, ignored){hint}")

    def number(self, key: str, kind: type, default: Any, low: float | None = None, high: float | None = None,
               above: float | None = None) -> Any:
        """A finite number within its documented range, or an error that states the range."""
        value = self.get(key, kind, default)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"= {value!r} must be a finite number")
        if (low is not None and value < low) or (high is not None and value > high) or \
                (above is not None and value <= above):
            bounds = " and ".join(b for b in (f">= {low:.10g}" if low is not None else "",
                                              ("positive" if above == 0 else f"> {above:g}")
                                              if above is not None else "",
                                              f"<= {high:.10g}" if high is not None else "") if b)
            self.fail(key, f"= {value!r} must be {bounds}")
        return value

    def fail(self, key: str, problem: str) -> None:
        where = f"[{self.name}] {key}".strip()
        raise FieldError(f"{self.file}: {where} {problem}.", self.name, key, problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.data.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            kinds = (kind,) if isinstance(kind, type) else kind
            self.fail(key, f"= {value!r} must be {' or '.join(_KIND_NAMES.get(k, k.__name__) for k in kinds)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.fail(key, f"= {value!r} is not one of: {', '.join(choices)}")
        return value

    def positive(self, key: str, kind: type, default: Any) -> Any:
        value = self.get(key, kind, default)
        if value <= 0:
            self.fail(key, f"= {value!r} must be positive")
        return value

    def sub(self, key: str) -> _Table:
        return _Table(self.file, f"{self.name}.{key}", self.data.get(key, {}), self.warnings)


def _parse_labelling(table: _Table) -> Labelling:
    table.expect(("threshold", "min_classifications", "max_artifact"))
    threshold = table.get("threshold", float, 0.8)
    if not 0.5 < threshold <= 1.0:
        table.fail("threshold", f"= {threshold} is outside (0.5, 1.0]; use a value such as 0.8")
    min_cls = table.get("min_classifications", int, 10)
    if min_cls < 0:
        table.fail("min_classifications", f"= {min_cls} must be 0 or more")
    max_art = table.get("max_artifact", float, 0.5)
    if not 0.0 <= max_art <= 1.0:
        table.fail("max_artifact", f"= {max_art} must be within [0, 1]")
    return Labelling(threshold, min_cls, max_art)


EXPERIMENT_KEYS = tuple(f for f in Experiment.__dataclass_fields__ if f not in ("name", "lr", "weight_decay",
                                                                                 "momentum")) + ("notes",)


def _check_name(path: Path, table: str, name: str) -> None:
    if len(name) > MAX_NAME:
        raise GalaxyError(f"{path}: [{table}.{name[:40]}…] the name is {len(name)} characters long; at most "
                          f"{MAX_NAME} (it names run folders): rename the table.")
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise GalaxyError(f"{path}: [{table}.{name}] the name may hold only letters, digits, '.', '_' and '-' "
                          f"(it names run folders); rename the table.")


def _parse_experiment(path: Path, name: str, data: Any, datasets: dict[str, DatasetSpec],
                      warnings: list[str] | None = None) -> Experiment:
    _check_name(path, "experiments", name)
    t = _Table(path, f"experiments.{name}", data, warnings)
    t.expect(EXPERIMENT_KEYS)
    dataset = t.get("dataset", str, "")
    if dataset not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        t.fail("dataset", f"= {dataset!r} names no [datasets.*] table (known: {known})")
    model = t.get("model", str, "tiny-cnn")
    if not is_model_name(model):
        t.fail("model", f"= {model!r} is unknown; valid models: {', '.join(MODEL_NAMES)}, or timm:NAME for a timm "
                        f"architecture, or zoobot:NAME for a Zoobot encoder (e.g. zoobot:convnext_nano)")
    weights = t.get("weights", str, "")
    if weights and not is_encoder_name(model):
        t.fail("weights", f"= {weights!r} loads an encoder's weights from a file: it needs a timm: or zoobot: model")
    epochs = t.positive("epochs", int, 10)
    finetune = _parse_finetune(t.sub("finetune"), epochs) if "finetune" in t.data else None
    executor = t.choice("executor", EXECUTORS, "local") if "executor" in t.data else ""
    slurm = _parse_slurm_keys(t.sub("slurm")) if "slurm" in t.data else {}
    micro = t.get("micro_batch", (int, str), "auto")
    if isinstance(micro, str) and micro != "auto" or isinstance(micro, int) and micro <= 0:
        t.fail("micro_batch", f"= {micro!r} must be \"auto\" or a positive integer")
    opt = t.sub("optimizer")
    opt.expect(("name", "lr", "weight_decay", "momentum"))
    split = t.get("split", list, [0.8, 0.1, 0.1])
    if len(split) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and
                                  math.isfinite(x) and x >= 0 for x in split) \
            or abs(sum(split) - 1.0) > 1e-6 or split[0] <= 0 or split[1] <= 0:
        t.fail("split", f"= {split!r} must be three fractions (train, val, test) summing to 1, with train "
                        f"and val above 0 (test may be 0: results are then reported on validation)")
    margin = t.get("vram_margin", float, 0.10)
    if not 0.0 <= margin < 0.9:
        t.fail("vram_margin", f"= {margin} must be within [0, 0.9)")
    smoothing = t.get("label_smoothing", float, 0.05)
    if not 0.0 <= smoothing < 1.0:
        t.fail("label_smoothing", f"= {smoothing} must be within [0, 1)")
    task, loss, questions, sampler = _parse_task(t, datasets[dataset].kind)
    return Experiment(
        name=name,
        dataset=dataset,
        task=task,
        loss=loss,
        questions=questions,
        labels=_parse_labelling(t.sub("labels")),
        model=model,
        pretrained=t.get("pretrained", bool, False),
        weights=weights,
        finetune=finetune,
        executor=executor,
        slurm=tuple(slurm.items()),
        image_size=t.positive("image_size", int, 64),
        epochs=epochs,
        optimizer=opt.choice("name", OPTIMIZERS, "adamw"),
        lr=opt.number("lr", float, 3e-4, above=0.0),
        weight_decay=opt.number("weight_decay", float, 1e-2, low=0.0),
        momentum=opt.number("momentum", float, 0.9, low=0.0, high=1.0),
        sampler=sampler,
        micro_batch=micro,
        effective_batch=t.positive("effective_batch", int, 64),
        precision=t.choice("precision", PRECISIONS, "auto"),
        channels_last=t.get("channels_last", bool, True),
        tf32=t.get("tf32", bool, True),
        devices=t.positive("devices", int, 1),
        seed=t.number("seed", int, 0, low=0, high=2**32 - 1),
        label_smoothing=smoothing,
        scheduler=t.choice("scheduler", SCHEDULERS, "cosine"),
        grad_clip=t.number("grad_clip", float, 1.0, low=0.0),
        early_stopping=t.number("early_stopping", int, 0, low=0),
        augment=t.get("augment", bool, True),
        split=(float(split[0]), float(split[1]), float(split[2])),
        vram_margin=margin,
        checkpoint_minutes=t.number("checkpoint_minutes", float, 10.0, above=0.0),
        mistakes=t.number("mistakes", int, 24, low=0),
        max_steps_per_epoch=t.number("max_steps_per_epoch", int, 0, low=0),
        tta=t.get("tta", bool, False),
    )


def _parse_slurm_keys(t: _Table) -> dict[str, Any]:
    """The [slurm] keys a table sets, each checked."""
    t.expect(SLURM_KEYS)
    found: dict[str, Any] = {}
    for key in ("partition", "account", "time", "mem"):
        if key in t.data:
            found[key] = t.get(key, str, "").strip()
    if "time" in found and found["time"] and not SLURM_TIME.fullmatch(found["time"]):
        t.fail("time", f"= {found['time']!r} is not a Slurm time limit; use minutes (\"90\"), \"HH:MM:SS\" or "
                       f"\"D-HH:MM:SS\"")
    for key, low in (("nodes", 1), ("gpus_per_node", 0), ("cpus_per_task", 0)):
        if key in t.data:
            found[key] = t.number(key, int, low, low=low)
    if "requeue" in t.data:
        found["requeue"] = t.get("requeue", bool, True)
    if "extra" in t.data:
        extra = t.get("extra", list, [])
        if not all(isinstance(option, str) and option.startswith("-") for option in extra):
            t.fail("extra", f"= {extra!r} must be a list of sbatch options, each starting with '-' "
                            f"(e.g. [\"--qos=normal\"])")
        found["extra"] = tuple(extra)
    return found


SLURM_TIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}")


def _parse_finetune(t: _Table, epochs: int) -> Finetune:
    t.expect(("frozen_epochs", "unfreeze_blocks", "lr_decay"))
    frozen = t.number("frozen_epochs", int, 0, low=0)
    blocks = t.get("unfreeze_blocks", (int, str), 0)
    if blocks == "all":
        blocks = -1
    elif isinstance(blocks, str) or blocks < 0:
        t.fail("unfreeze_blocks", f"= {blocks!r} must be a number of blocks (0: the head alone trains) or \"all\"")
    decay = t.number("lr_decay", float, 0.75, high=1.0, above=0.0)
    if blocks and frozen >= epochs:
        t.fail("frozen_epochs", f"= {frozen} leaves no epoch to train the unfrozen blocks (epochs = {epochs}); "
                                f"lower it, or raise epochs")
    return Finetune(frozen, blocks, decay)


def _parse_task(t: _Table, kind: str) -> tuple[str, str, tuple[str, ...], str]:
    """task, loss, questions and sampler, which depend on each other and on the dataset's kind."""
    task = t.choice("task", TASKS, "classification")
    loss = t.choice("loss", LOSSES[task], LOSSES[task][0])
    questions = t.get("questions", list, [])
    if not all(isinstance(q, str) and q for q in questions) or len(set(questions)) != len(questions):
        t.fail("questions", f"= {questions!r} must be a list of distinct question names")
    if task == "classification":
        if questions:
            t.fail("questions", "applies to task = \"vote-fractions\" only")
        return task, loss, (), t.choice("sampler", SAMPLERS, "weighted")
    if kind not in VOTE_KINDS:
        t.fail("task", f"= \"vote-fractions\" needs volunteers' vote fractions, and a {kind} dataset has fixed "
                       f"labels; use a {', '.join(VOTE_KINDS)} dataset, or task = \"classification\"")
    if loss == "dirichlet-multinomial" and kind in COUNTLESS_KINDS:
        t.fail("loss", f"= \"dirichlet-multinomial\" needs the volunteers' vote counts, and a {kind} dataset has "
                       f"fractions only; use loss = \"mse\" or \"question-ce\"")
    sampler = t.choice("sampler", SAMPLERS, "none")
    if sampler != "none":
        t.fail("sampler", f"= {sampler!r} balances classes, and a vote-fraction run has none; use \"none\"")
    return task, loss, tuple(questions), sampler


def _parse_dataset(path: Path, name: str, data: Any, warnings: list[str] | None = None) -> DatasetSpec:
    _check_name(path, "datasets", name)
    t = _Table(path, f"datasets.{name}", data, warnings)
    kind = t.get("kind", str, "")
    if kind not in DATASET_KINDS:
        t.fail("kind", f"= {kind!r} is unknown; valid kinds: {', '.join(DATASET_KINDS)}")
    t.expect(COMMON_KEYS + DATASET_KINDS[kind] + DATASET_OPTIONAL.get(kind, ()))
    for key in DATASET_KINDS[kind]:
        if key not in t.data:
            t.fail(key, f"is missing; a {kind} dataset needs: {', '.join(DATASET_KINDS[kind])}")
    crop = t.number("crop", float, 1.0, above=0.0, high=1.0)
    for key in DATASET_KINDS[kind]:
        if not t.get(key, str, "").strip():
            t.fail(key, "is empty; it names a file or folder")
    t.get("notes", str, "")
    if kind == "synthetic":
        t.number("count", int, 3000, low=1, high=10_000_000)
        t.number("size", int, 64, low=8, high=4096)
        t.number("seed", int, 0, low=0, high=4_294_967_295)
    if kind == "image-folder":
        _check_folder_options(t)
    return DatasetSpec(name=name, kind=kind, options={**t.data, "crop": crop} if "crop" in t.data else dict(t.data),
                       base_dir=path.parent)


def _check_folder_options(t: _Table) -> None:
    """merge = { class = ["folder", ...] }, exclude = ["folder", ...]."""
    merge = t.get("merge", dict, {})
    for target, members in merge.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            t.fail("merge", f"{target} = {members!r} must be a list of folder names, e.g. {target} = "
                            f"[\"{target}_a\", \"{target}_b\"]")
    exclude = t.get("exclude", list, [])
    if not all(isinstance(folder, str) for folder in exclude):
        t.fail("exclude", f"= {exclude!r} must be a list of folder names")


def parse_registry(path: Path, raw: dict[str, Any]) -> Registry:
    warnings: list[str] = []
    workspace = _Table(path, "workspace", raw.get("workspace", {}), warnings)
    workspace.expect(("runs_dir", "cache_dir", "executor", "slurm"))
    executor = workspace.choice("executor", EXECUTORS, "local")
    slurm = SlurmSettings(**_parse_slurm_keys(workspace.sub("slurm")))
    base = path.parent
    datasets = {name: _parse_dataset(path, name, data, warnings)
                for name, data in _Table(path, "datasets", raw.get("datasets", {})).data.items()}
    experiments = {name: _parse_experiment(path, name, data, datasets, warnings)
                   for name, data in _Table(path, "experiments", raw.get("experiments", {})).data.items()}
    return Registry(
        path=path,
        raw=raw,
        runs_dir=base / workspace.get("runs_dir", str, "runs"),
        cache_dir=base / workspace.get("cache_dir", str, "cache"),
        datasets=datasets,
        experiments=experiments,
        warnings=warnings,
        executor=executor,
        slurm=slurm,
    )


def parse_frozen(path: Path, config: dict[str, Any], workspace: Path) -> tuple[Experiment, DatasetSpec]:
    """The experiment and dataset a run folder's config.toml froze, validated like the registry."""
    dataset = {k: v for k, v in config["dataset"].items() if k != "name"}
    name = config["dataset"]["name"]
    experiment_name = config["run"]["experiment"]
    datasets = {name: _parse_dataset(path, name, dataset)}
    experiment = _parse_experiment(path, experiment_name, config["experiment"], datasets)
    spec = datasets[name]
    return experiment, DatasetSpec(spec.name, spec.kind, spec.options, workspace)


def load_registry(path: Path) -> Registry:
    return parse_registry(path, _read_raw(path))


# ---------------------------------------------------------------- saving

DEFAULT_REGISTRY = """\
# galaxy-tui registry: the datasets and experiments of this workspace. Edit it by hand or from the
# app: the app changes only the values you change there, and keeps comments and layout.
# Runs are not listed here: each lives in its own folder under runs_dir.

[workspace]
runs_dir = "runs"
cache_dir = "cache"

# The embedded default: procedurally rendered galaxies with simulated Galaxy Zoo votes, no download.
[datasets.demo]
kind = "synthetic"
count = 3000
size = 64
seed = 0

[experiments.demo-tiny]
dataset = "demo"
labels = { threshold = 0.8, min_classifications = 10, max_artifact = 0.5 }
model = "tiny-cnn"
image_size = 64
epochs = 8
optimizer = { name = "adamw", lr = 3e-3, weight_decay = 1e-2 }
sampler = "weighted"
micro_batch = "auto"
effective_batch = 64
precision = "auto"
scheduler = "cosine"

# The same galaxies, predicting the volunteers' answers down the decision tree instead of one class.
[experiments.demo-fractions]
dataset = "demo"
task = "vote-fractions"
loss = "mse"
model = "tiny-cnn"
image_size = 64
epochs = 20
optimizer = { name = "adamw", lr = 3e-3, weight_decay = 1e-2 }
effective_batch = 64
scheduler = "cosine"
"""


def _read_document(path: Path) -> tomlkit.TOMLDocument:
    import tomlkit  # only an edit needs it: the app's start only reads

    _read_raw(path)  # the same checks and messages as loading (missing file, encoding, syntax)
    return tomlkit.parse(path.read_text(encoding="utf-8"))


def update_registry(path: Path, mutate: Callable[[dict[str, Any]], None]) -> Registry:
    """Re-read the file under the lock, apply `mutate` to its document, validate, write atomically.

    `mutate` sees a dict-like tomlkit document: assigning a value changes that value only. If the
    result does not validate, the file is left as it was and the error raised.
    """
    import tomlkit

    with locked(path):
        document = _read_document(path) if path.exists() else tomlkit.parse(DEFAULT_REGISTRY)
        mutate(document)
        registry = parse_registry(path, document.unwrap())
        atomic_write_bytes(path, tomlkit.dumps(document).encode("utf-8"))
    return registry


def default_registry(workspace: Path) -> Registry:
    """The registry of a workspace with no experiments.toml, in memory: reading never writes."""
    path = workspace / REGISTRY_FILE
    return parse_registry(path, tomllib.loads(DEFAULT_REGISTRY))


def registry_for_reading(workspace: Path) -> Registry:
    """The workspace's registry for commands that only read: the default one if there is no file."""
    path = workspace / REGISTRY_FILE
    return load_registry(path) if path.exists() else default_registry(workspace)


def ensure_registry(workspace: Path) -> Registry:
    """Load the workspace's registry, writing the default one first if there is none."""
    path = workspace / REGISTRY_FILE
    if not path.exists():
        workspace.mkdir(parents=True, exist_ok=True)
        with locked(path):
            if not path.exists():
                atomic_write_bytes(path, DEFAULT_REGISTRY.encode("utf-8"))
    return load_registry(path)


def set_labelling(path: Path, experiment: str, labelling: Labelling) -> Registry:
    """Write the three labelling values; the rest of the file (and of the labels table) stays as it is."""
    def mutate(raw: dict[str, Any]) -> None:
        table = raw.setdefault("experiments", {}).setdefault(experiment, {})
        labels = table.setdefault("labels", {})
        for key, value in (("threshold", round(labelling.threshold, 4)),
                           ("min_classifications", labelling.min_classifications),
                           ("max_artifact", round(labelling.max_artifact, 4))):
            if labels.get(key) != value:
                labels[key] = value
    return update_registry(path, mutate)
