"""experiments.toml (and a run's frozen config.toml) read into the typed objects: every key checked, with a
message naming the file, table and key and what to do; unknown keys kept and said."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import MODEL_NAMES, is_encoder_name, is_model_name
from galaxy_tui.registry.model import (
    COMMON_KEYS,
    COUNTLESS_KINDS,
    DATASET_KINDS,
    DATASET_OPTIONAL,
    EXECUTORS,
    LOSSES,
    MAX_NAME,
    NAME,
    OPTIMIZERS,
    PRECISIONS,
    SAMPLERS,
    SCHEDULERS,
    SLURM_KEYS,
    TASKS,
    VIEW_COUNTS,
    VOTE_KINDS,
    DatasetSpec,
    Experiment,
    Finetune,
    Labelling,
    Registry,
    SlurmSettings,
)

# ---------------------------------------------------------------- parsing

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_raw(path: Path) -> dict[str, Any]:
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
    table.expect(LABEL_KEYS)
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
OPTIMIZER_KEYS = ("name", "lr", "weight_decay", "momentum")
LABEL_KEYS = tuple(Labelling.__dataclass_fields__)
FINETUNE_KEYS = ("frozen_epochs", "unfreeze_blocks", "lr_decay")
WORKSPACE_KEYS = ("runs_dir", "cache_dir", "executor", "slurm")
# Every table of experiments.toml and the keys the parser knows in it (docs/experiments-toml.md documents
# each; a test holds the two together). NAME stands for a dataset's or an experiment's name.
KEYS_BY_TABLE: dict[str, tuple[str, ...]] = {
    "workspace": WORKSPACE_KEYS,
    "workspace.slurm": SLURM_KEYS,
    "datasets.NAME": tuple(dict.fromkeys(COMMON_KEYS + tuple(key for kind in DATASET_KINDS for key in
                                                             DATASET_KINDS[kind] + DATASET_OPTIONAL.get(kind, ())))),
    "experiments.NAME": EXPERIMENT_KEYS,
    "experiments.NAME.optimizer": OPTIMIZER_KEYS,
    "experiments.NAME.labels": LABEL_KEYS,
    "experiments.NAME.finetune": FINETUNE_KEYS,
    "experiments.NAME.slurm": SLURM_KEYS,
}


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
    opt.expect(OPTIMIZER_KEYS)
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
        views=_parse_views(t),
    )


def _parse_views(t: _Table) -> int:
    views = t.get("views", int, 1)
    if views not in VIEW_COUNTS:
        t.fail("views", f"= {views} is not one of {', '.join(map(str, VIEW_COUNTS))} (1: the galaxy as it is; 4: its "
                        f"quarter turns; 8: and their mirror images; 16: and all of those turned by 45 degrees)")
    return views


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
    t.expect(FINETUNE_KEYS)
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
        t.number("mislabel", float, 0.0, low=0.0, high=0.5)  # planted truth: a share given another type's votes
        t.number("rare", float, 0.0, low=0.0, high=0.1)      # and a share drawn as rings and mergers
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
    workspace.expect(WORKSPACE_KEYS)
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
    return parse_registry(path, read_raw(path))
