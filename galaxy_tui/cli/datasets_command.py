"""`galaxy-tui datasets`: the registered datasets with their class counts at a labelling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from galaxy_tui.cli.output import print_warnings
from galaxy_tui.data.labels import empty_class_warning
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling, registry_for_reading

if TYPE_CHECKING:
    pass



def _labelling(threshold: float | None, min_classifications: int | None, max_artifact: float | None) -> Labelling:
    default = Labelling()
    labelling = Labelling(default.threshold if threshold is None else threshold,
                          default.min_classifications if min_classifications is None else min_classifications,
                          default.max_artifact if max_artifact is None else max_artifact)
    if not 0.5 < labelling.threshold <= 1.0:
        raise GalaxyError(f"--threshold {labelling.threshold} is outside (0.5, 1.0]; try 0.8.")
    return labelling

def list_datasets(workspace: Path, threshold: float | None, min_classifications: int | None,
                  max_artifact: float | None) -> int:
    labelling = _labelling(threshold, min_classifications, max_artifact)
    registry = registry_for_reading(workspace)
    console = Console()
    rule = f"threshold {labelling.threshold:g}, min votes {labelling.min_classifications}, " \
           f"max artifact {labelling.max_artifact:g}"
    table = Table(title=f"Datasets in {registry.path}")
    for column in ("name", "kind", "rows", "labelling", "labelled", "class counts", "source"):
        table.add_column(column)
    notes: list[str] = []
    for spec in registry.datasets.values():
        try:
            dataset = load_dataset(spec, registry.cache_dir)
        except GalaxyError as exc:
            table.add_row(spec.name, spec.kind, "-", "-", "-", "[red]cannot load[/red]", "")
            notes.append(f"[red]{spec.name}[/red]: {exc}")
            continue
        counts = dataset.counts(labelling)
        table.add_row(spec.name, spec.kind, str(len(dataset.frame)), rule if dataset.has_votes else "— (its files)",
                      str(sum(counts.values())),
                      "  ".join(f"{name} {n}" for name, n in counts.items()), dataset.location)
        notes.extend(f"[yellow]{spec.name}[/yellow]: {problem}" for problem in dataset.problems)
        warning = empty_class_warning(counts, spec.name) if dataset.has_votes else None
        if warning:
            notes.append(f"[yellow]{warning}[/yellow]")
    console.print(table)
    for note in notes:
        console.print(note)
    print_warnings(registry.warnings)
    return 0
