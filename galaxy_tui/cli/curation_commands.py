"""Headless curation: `galaxy-tui curate RUN` (the job), `similar RUN GALAXY|IMAGE`, `curation RUN
issues|next|odd` (the lists, and a CSV of them) and `override DATASET GALAXY exclude|relabel|keep`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import registry_for_reading

if TYPE_CHECKING:
    import numpy as np

LISTS = {"issues": "label_issues.csv", "next": "label_next.csv", "odd": "odd_ones.csv"}
TITLES = {"issues": "likely wrong labels", "next": "label these next", "odd": "the odd ones out"}


def add_parsers(commands: Any, count: Any) -> None:
    curate = commands.add_parser("curate", help="embed every galaxy of a finished run's dataset and rank them: "
                                                "likely wrong labels, what to label next, the odd ones out")
    curate.add_argument("run")
    curate.add_argument("--labelled-only", action="store_true",
                        help="leave out the galaxies the labelling rule gave no class (no 'label next' list)")
    curate.add_argument("--map", choices=("pca", "umap"), default="pca",
                        help="the 2-D map: PCA (default) or UMAP (extra `umap`)")
    curate.add_argument("--again", action="store_true", help="embed again, though an embedding is there")
    curate.add_argument("--detach", action="store_true", help="return at once")
    similar = commands.add_parser("similar", help="the galaxies most like one, in a curated run's embedding")
    similar.add_argument("run")
    similar.add_argument("galaxy", help="a galaxy id of the run's dataset, or an image file")
    similar.add_argument("-k", type=count, default=20, help="how many (default 20)")
    listing = commands.add_parser("curation", help="a curated run's lists: issues, next or odd")
    listing.add_argument("run")
    listing.add_argument("list", choices=tuple(LISTS), help="issues: likely wrong labels; next: what to label "
                                                            "next; odd: the odd ones out")
    listing.add_argument("-n", type=count, default=20, help="how many to print (default 20)")
    listing.add_argument("--csv", type=Path, help="write the whole list here instead, with files and sky positions")
    override = commands.add_parser("override", help="exclude or relabel one galaxy of a dataset in the runs that "
                                                    "follow (the catalogue is never edited)")
    override.add_argument("dataset")
    override.add_argument("galaxy")
    override.add_argument("action", choices=("exclude", "relabel", "keep"))
    override.add_argument("label", nargs="?", default="", help="the new class, for relabel")
    override.add_argument("--note", default="", help="why, kept beside the decision")


def run_command(args: argparse.Namespace, workspace: Path) -> int | None:
    """The exit status of a curation command, or None when `args` names another command."""
    if args.command == "curate":
        return curate(workspace, args.run, args.labelled_only, args.map, args.again, args.detach)
    if args.command == "similar":
        return similar(workspace, args.run, args.galaxy, args.k)
    if args.command == "curation":
        return show_list(workspace, args.run, args.list, args.n, args.csv)
    if args.command == "override":
        return override(workspace, args.dataset, args.galaxy, args.action, args.label, args.note)
    return None


def _check_class(registry: Any, dataset: str, label: str) -> None:
    from galaxy_tui.data.sources import load_dataset
    classes = load_dataset(registry.dataset(dataset), registry.cache_dir).classes
    if label not in classes:
        raise GalaxyError(f"{label!r} is not a class of dataset {dataset!r}; its classes: {', '.join(classes)}.")


def curate(workspace: Path, run_id: str, labelled_only: bool, layout: str, again: bool, detach: bool) -> int:
    from galaxy_tui.cli.run_commands import announce_and_follow
    from galaxy_tui.curation.embedding import curation_folder
    from galaxy_tui.runs import curate_run
    run = curate_run(registry_for_reading(workspace), run_id, labelled_only, layout, again=again)
    return announce_and_follow(run, f"run [bold]{run.id}[/bold]: embedding its dataset's galaxies with its best "
                                    f"model and ranking them (attempt {run.attempt}); the lists go to "
                                    f"{curation_folder(run.dir)}", detach)


def similar(workspace: Path, run_id: str, galaxy: str, k: int) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from galaxy_tui.curation.embedding import read_embedding
    from galaxy_tui.curation.similar import nearest
    from galaxy_tui.runs import get_run
    run = get_run(registry_for_reading(workspace), run_id)
    embedding = read_embedding(run.dir)
    path = Path(galaxy).expanduser()
    if path.is_file():
        query, skip = _embed_file(run.dir, path), None
        asked = f"the image {path}"
    else:
        row = embedding.row_of(galaxy)
        query, skip = np.asarray(embedding.vectors[row], np.float32), np.array([row])
        asked = f"galaxy {galaxy} ({_label_text(embedding.galaxies.iloc[row])})"
    rows, sims = nearest(embedding.vectors, query, k, skip)
    found = embedding.galaxies.iloc[rows[0]].assign(similarity=np.round(sims[0], 4))
    if not sys.stdout.isatty():
        found[["id", "similarity", "part", "label"]].to_csv(sys.stdout, sep="\t", index=False)
        return 0
    table = Table("", "galaxy", "cosine similarity", "part", "label", title=f"the {k} galaxies most like {asked}")
    for rank, (_, galaxy_row) in enumerate(found.iterrows(), start=1):
        table.add_row(str(rank), str(galaxy_row["id"]), f"{galaxy_row['similarity']:.3f}", str(galaxy_row["part"]),
                      _label_text(galaxy_row))
    Console().print(table)
    return 0


def _label_text(galaxy: Any) -> str:
    return str(galaxy["label"]) or "no label"


def _embed_file(run_dir: Path, path: Path) -> np.ndarray:
    """The image's features through the run's best model, as a unit row (torch loads here only)."""
    import numpy as np

    from galaxy_tui.curation.embedding import unit_rows
    from galaxy_tui.inference.galaxy_sources import file_items
    from galaxy_tui.inference.predicting import predict_items
    from galaxy_tui.inference.servable import load_run
    items, collected = file_items([path])
    if not items:
        why = collected.skipped[0][1] if collected.skipped else "not an image format it knows"
        raise GalaxyError(f"{path} is not an image this tool reads ({why}).")
    predicted = predict_items(load_run(run_dir), items, features=True)
    features = predicted.feature_array
    if features is None or not len(features):
        reason = predicted.skipped[0][1] if predicted.skipped else "no features"
        raise GalaxyError(f"{path} could not be read: {reason}.")
    return unit_rows(features)[0].astype(np.float32)


def show_list(workspace: Path, run_id: str, which: str, count: int, out: Path | None) -> int:
    from rich.console import Console

    from galaxy_tui.cli.tables import whole_table
    from galaxy_tui.curation.embedding import curation_folder
    from galaxy_tui.curation.files import read_ranking
    from galaxy_tui.runs import get_run
    registry = registry_for_reading(workspace)
    run = get_run(registry, run_id)
    ranking = read_ranking(curation_folder(run.dir), LISTS[which])
    if ranking is None:
        raise GalaxyError(f"run {run.id} has no curation lists yet; make them with `galaxy-tui curate {run.id}`.")
    if out is not None:
        from galaxy_tui.curation.export import with_files_and_sky
        with_files_and_sky(registry, run, ranking).to_csv(out, index=False)
        Console().print(f"{len(ranking)} galaxies ({TITLES[which]}) written to {out}")
        return 0
    if not sys.stdout.isatty():
        ranking.head(count).to_csv(sys.stdout, sep="\t", index=False)
        return 0
    console = Console()
    rows = [[str(value) for value in values] for values in ranking.head(count).itertuples(index=False)]
    console.print(whole_table(f"run {run.id}: {TITLES[which]} (the first {min(count, len(ranking))} of "
                              f"{len(ranking)})", list(map(str, ranking.columns)), rows, console.width))
    return 0


def override(workspace: Path, dataset: str, galaxy: str, action: str, label: str, note: str) -> int:
    from rich.console import Console

    from galaxy_tui.data.overrides import overrides_file, record_decision
    registry = registry_for_reading(workspace)
    spec = registry.dataset(dataset)
    if action == "relabel":
        _check_class(registry, dataset, label)
    path = overrides_file(registry.workspace, spec.name)
    record_decision(path, galaxy, action, label, note)
    said = {"exclude": "excluded from", "relabel": f"relabelled {label!r} in", "keep": "as the catalogue has it in"}
    Console().print(f"galaxy {galaxy}: {said[action]} the runs that follow ({path})")
    return 0
