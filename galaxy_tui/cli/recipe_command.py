"""`galaxy-tui recipe [NAME] [--prefix P]`: the recipes that reproduce the workflows this workbench replaces, listed
with their targets, or one written into experiments.toml."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from galaxy_tui.recipes.catalogue import RECIPES, recipe
from galaxy_tui.recipes.writing import write_recipe
from galaxy_tui.registry import REGISTRY_FILE, ensure_registry


def list_recipes(console: Console) -> None:
    table = Table(title="recipes (galaxy-tui recipe NAME writes one into experiments.toml)", show_lines=True)
    for column in ("recipe", "what", "dataset", "experiments", "target", "GPU time (one A100, estimated)"):
        table.add_column(column, overflow="fold")
    for item in RECIPES.values():
        first = item.experiments[0]
        table.add_row(item.name, item.summary, item.dataset.name, "\n".join(e.name for e in item.experiments),
                      first.target, first.gpu_time if len(item.experiments) == 1
                      else "; ".join(f"{e.name}: {e.gpu_time}" for e in item.experiments))
    console.print(table)


def write(workspace: Path, name: str | None, prefix: str) -> int:
    console = Console()
    if name is None:
        list_recipes(console)
        return 0
    chosen = recipe(name)
    ensure_registry(workspace)
    written = write_recipe(workspace / REGISTRY_FILE, chosen, prefix)
    path = workspace / REGISTRY_FILE
    console.print(f"wrote {', '.join(written.experiments)} into {path}, each with the figure it should reach")
    if written.dataset_added:
        console.print(f"added the dataset [bold]{written.dataset}[/bold]: its paths point into data/ under the "
                      f"workspace; put the files there (where to get them is in the comment above it) or edit the "
                      f"paths")
    else:
        console.print(f"uses your dataset [bold]{written.dataset}[/bold] as it is")
    console.print(f"then: galaxy-tui train {written.experiments[0]}")
    return 0
