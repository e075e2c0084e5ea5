"""experiments.toml: load into typed objects, validate, and edit the person's file in place.

The file holds only what the person decided (datasets, experiments, workspace); runs live in their
folders. Every change is a function applied to the freshly re-read document under an exclusive lock,
through tomlkit, so only the changed values change: comments, order, inline tables and the spelling
of numbers (`3e-4`) stay as written, unknown keys survive, and two processes saving at once lose
neither change. The file's mode is kept and a symlink is written through to its target.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_tui.atomic import atomic_write_bytes, locked
from galaxy_tui.registry.model import (
    EXECUTORS,
    FIXED_LABEL_KINDS,
    LOSSES,
    NAME,
    OPTIMIZERS,
    PRECISIONS,
    REGISTRY_FILE,
    SAMPLERS,
    SCHEDULERS,
    TASKS,
    DatasetSpec,
    Experiment,
    Finetune,
    Labelling,
    Registry,
    SlurmSettings,
)
from galaxy_tui.registry.parsing import (
    FieldError,
    load_registry,
    parse_frozen,
    parse_registry,
    read_raw,
)

if TYPE_CHECKING:
    import tomlkit

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

    read_raw(path)  # the same checks and messages as loading (missing file, encoding, syntax)
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


__all__ = [
    "DEFAULT_REGISTRY",
    "DatasetSpec",
    "EXECUTORS",
    "Experiment",
    "FIXED_LABEL_KINDS",
    "FieldError",
    "Finetune",
    "LOSSES",
    "Labelling",
    "NAME",
    "OPTIMIZERS",
    "PRECISIONS",
    "REGISTRY_FILE",
    "Registry",
    "SAMPLERS",
    "SCHEDULERS",
    "SlurmSettings",
    "TASKS",
    "default_registry",
    "ensure_registry",
    "load_registry",
    "parse_frozen",
    "parse_registry",
    "read_raw",
    "registry_for_reading",
    "set_labelling",
    "update_registry",
]
