"""Writing a recipe into experiments.toml through tomlkit: the user's comments and layout stay, the recipe's dataset
is added unless one of that name is there already (the user's is kept, and must be of the same kind), and its
experiments are added, each with a comment saying the figure to reach and the GPU time to expect. Nothing is written
when an experiment of the same name exists: `prefix` names them apart."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galaxy_tui.errors import GalaxyError
from galaxy_tui.recipes.catalogue import Recipe
from galaxy_tui.registry import Registry, update_registry

COMMENT_WIDTH = 110


@dataclass(frozen=True)
class Written:
    dataset: str
    dataset_added: bool  # False: the workspace's own dataset of that name is used
    experiments: tuple[str, ...]
    registry: Registry  # as written


def _table(comment: str, values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for line in textwrap.wrap(comment, COMMENT_WIDTH):
        table.add(tomlkit.comment(line))
    for key, value in values.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        table.add(key, value)
    table.add(tomlkit.nl())
    return table


def write_recipe(path: Path, recipe: Recipe, prefix: str = "") -> Written:
    """Add the recipe to the registry at `path` (validated before it is written, as every edit is)."""
    names = {experiment.name: f"{prefix}{experiment.name}" for experiment in recipe.experiments}
    added: list[bool] = []

    def mutate(document: dict[str, Any]) -> None:
        experiments = document.setdefault("experiments", {})
        taken = [name for name in names.values() if name in experiments]
        if taken:
            raise GalaxyError(f"{path}: experiments {', '.join(taken)} exist already; nothing was written. Delete or "
                              f"rename them, or name the recipe's apart: galaxy-tui recipe {recipe.name} --prefix "
                              f"mine-")
        datasets = document.setdefault("datasets", {})
        own = datasets.get(recipe.dataset.name)
        if own is not None and own.get("kind") != recipe.dataset.table["kind"]:
            raise GalaxyError(f"{path}: dataset {recipe.dataset.name!r} is a {own.get('kind')!r} dataset; the "
                              f"recipe needs a {recipe.dataset.table['kind']!r} one of that name. Rename yours; "
                              f"nothing was written.")
        added.append(own is None)
        if own is None:
            datasets[recipe.dataset.name] = _table(f"From the recipe {recipe.name}. {recipe.dataset.where}.",
                                                   recipe.dataset.table)
        for experiment in recipe.experiments:
            experiments[names[experiment.name]] = _table(
                f"Recipe {recipe.name}: {recipe.summary}. Target: {experiment.target}. GPU time: "
                f"{experiment.gpu_time} on one A100-class GPU (an estimate).", experiment.table)

    registry = update_registry(path, mutate)
    return Written(recipe.dataset.name, added[-1], tuple(names.values()), registry)
