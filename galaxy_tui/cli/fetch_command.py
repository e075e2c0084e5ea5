"""`galaxy-tui fetch [NAME] [--to DIR] [--mirror URL|DIR]`: a public dataset downloaded, checked, unpacked and
registered, with a Rich progress bar; no name: the sources, their sizes and checksums."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from galaxy_tui.fetching.sources import SOURCES, Source
from galaxy_tui.model_names import ENCODERS


def list_sources(console: Console) -> None:
    table = Table(title="datasets galaxy-tui fetch can get", show_lines=True)
    for column in ("name", "what", "size", "files (sha256)"):
        table.add_column(column, overflow="fold")
    for source in SOURCES.values():
        table.add_row(source.name, source.what, source.approx_size, _files(source))
    table.add_row("zoobot:NAME", "a Zoobot encoder (Walmsley et al.), pretrained on Galaxy Zoo, into the Hugging Face "
                  "cache: " + ", ".join(e for e in ENCODERS if e.startswith("zoobot:")), "16-350 MB",
                  "the hub's own (huggingface_hub keeps each file by its hash)")
    console.print(table)


def _files(source: Source) -> str:
    if source.kaggle:
        return "\n".join(f"kaggle competitions download -c {source.kaggle} -f {f.name} (none published)"
                         for f in source.files)
    return "\n".join(f"{f.url} ({f.sha256 or 'none published'})" for f in source.files)


def fetch_dataset(workspace: Path, name: str | None, to: Path | None, mirror: str | None, detach: bool = False) -> int:
    console = Console()
    if name is None:
        list_sources(console)
        return 0
    if name.startswith("zoobot:"):
        from galaxy_tui.fetching.encoders import fetch_encoder
        folder = fetch_encoder(name)
        files = ", ".join(sorted(path.name for path in folder.iterdir()))
        console.print(f"{name} is in the Hugging Face cache: {folder} ({files}); use it as model = \"{name}\"")
        return 0
    from galaxy_tui.fetching.fetch import fetch, source
    if detach:
        from galaxy_tui.fetching.fetch_jobs import start_fetch_job
        source(name)  # an unknown name is said here, not in the job
        folder = start_fetch_job(workspace, name, to, mirror)
        console.print(f"fetching {name} in the background ({folder}); the Datasets pane shows its progress, "
                      f"status.json there too")
        return 0

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(file: str, done: int, total: int | None) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done, total=total)
        fetched = fetch(workspace, name, to, mirror, progress)
    for file, sha256 in fetched.sha256.items():
        console.print(f"{fetched.folder / file}  sha256 {sha256}")
    console.print(f"dataset [bold]{name}[/bold] " + ("registered in experiments.toml" if fetched.registered
                                                    else "was already in experiments.toml (left as it is)"))
    console.print("then: galaxy-tui datasets, or an experiment on it (galaxy-tui recipe lists some)")
    return 0
