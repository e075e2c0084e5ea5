"""A run as it was launched, typed: its config.toml read in one place.

config.toml freezes the experiment and dataset tables, where the run lives (workspace, cache), the config hash,
and the task it was trained on: the classes, and for a vote-fraction run the questions and answers of its
decision tree. So a finished run folder is enough on its own: shown, predicted with, exported and served with
its dataset moved away. Runs of versions that did not freeze the task have it rebuilt once from their catalogue.
Torch-free.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from galaxy_tui.atomic import atomic_write_bytes
from galaxy_tui.data.vote_tree import VoteTree, tree_from_table, tree_table
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import DatasetSpec, Experiment, parse_frozen

DERIVED = ("ensemble", "boosted")  # result folders made from runs (their config has this section), not trained


def read_config(run_dir: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GalaxyError(f"{run_dir}/config.toml cannot be read ({exc}); the run folder is damaged.") from None


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    atomic_write_bytes(run_dir / "config.toml", tomli_w.dumps(config).encode())


def task_section(classes: tuple[str, ...], tree: VoteTree | None) -> dict[str, Any]:
    """What config.toml's [task] freezes: the classes, and a vote-fraction run's decision tree."""
    section: dict[str, Any] = {"classes": list(classes)}
    if tree is not None:
        section["tree"] = tree_table(tree)
    return section


@dataclass(frozen=True)
class FrozenRun:
    dir: Path
    config: dict[str, Any]   # config.toml as written
    experiment: Experiment
    dataset: DatasetSpec
    _rebuilt: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def workspace(self) -> Path:
        return Path(self.config["run"]["workspace"])

    @property
    def cache_dir(self) -> Path:
        return Path(self.config["run"]["cache_dir"])

    @property
    def config_hash(self) -> str:
        return str(self.config["run"]["config_hash"])

    @property
    def derived(self) -> str | None:
        """"ensemble" or "boosted" for a result folder made from runs (it has no network of its own)."""
        return next((section for section in DERIVED if section in self.config), None)

    @property
    def is_fractions(self) -> bool:
        return self.experiment.task == "vote-fractions"

    @property
    def crop(self) -> float:
        return float(self.dataset.options.get("crop", 1.0))

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"image_size": self.experiment.image_size, "crop": self.crop,
                "normalisation": "ImageNet mean and std on RGB in 0..1"}

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The classes the run was trained on, as frozen at launch (None: a run older than that)."""
        frozen = self.config.get("task", {}).get("classes")
        return tuple(map(str, frozen)) if isinstance(frozen, list) and frozen else None

    def tree(self) -> VoteTree | None:
        """A vote-fraction run's questions and answers (None for a classification run): as frozen at launch,
        or rebuilt once from the catalogue for a run older than that, and then frozen too."""
        if not self.is_fractions:
            return None
        table = self.config.get("task", {}).get("tree")
        if isinstance(table, dict):
            return tree_from_table(table)
        if "tree" not in self._rebuilt:
            self._rebuilt["tree"] = self._tree_from_catalogue()
        return self._rebuilt["tree"]

    def _tree_from_catalogue(self) -> VoteTree:
        from galaxy_tui.data.sources import load_dataset  # pandas: only for a run that froze no tree
        from galaxy_tui.data.splits import experiment_tree
        dataset = load_dataset(self.dataset, self.cache_dir)
        tree = experiment_tree(dataset, self.experiment)
        try:  # freeze it, so this run needs its catalogue no more
            write_config(self.dir, {**self.config, "task": task_section(dataset.classes, tree)})
        except OSError:
            pass  # a read-only copy: rebuilt again next time
        return tree


def read_frozen(run_dir: Path) -> FrozenRun:
    """The run folder's config.toml, validated like the registry; a GalaxyError saying what is damaged."""
    config = read_config(run_dir)
    try:
        experiment, dataset = parse_frozen(run_dir / "config.toml", config, Path(config["run"]["workspace"]))
    except (KeyError, TypeError) as exc:
        raise GalaxyError(f"{run_dir}/config.toml lacks {exc} (or has it damaged); the run folder is damaged.") \
            from None
    return FrozenRun(run_dir, config, experiment, dataset)
