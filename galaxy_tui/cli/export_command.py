"""`galaxy-tui export RUN --format torchscript|onnx [--out FILE] [--check PATH...]`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from galaxy_tui.inference.exporting import FORMATS, PARITY_LIMIT, export_run
from galaxy_tui.inference.galaxy_sources import file_items, held_out_items
from galaxy_tui.inference.servable import load_run
from galaxy_tui.registry import registry_for_reading
from galaxy_tui.runs import get_run

CHECKED_GALAXIES = 32


def export(workspace: Path, run_id: str, kind: str, out: Path | None, check: list[Path]) -> int:
    run = get_run(registry_for_reading(workspace), run_id)
    loaded = load_run(run.dir)
    items = file_items(check)[0][:CHECKED_GALAXIES] if check else held_out_items(run, CHECKED_GALAXIES)
    target, parity = export_run(loaded, kind, out or Path(f"{run.id}{FORMATS[kind]}"), items)
    console = Console()
    console.print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB) and {target}.json: input float32 RGB "
                  f"0..255, N x 3 x {loaded.image_size} x {loaded.image_size} (centre crop {loaded.crop:g}, "
                  f"bilinear), output {', '.join(loaded.outputs[:6])}{' …' if len(loaded.outputs) > 6 else ''}")
    if parity.max_difference is None:
        console.print(f"[yellow]parity not checked[/yellow]: {parity.note}")
        return 0
    verdict = "[green]ok[/green]" if parity.passed else f"[red]above the limit {PARITY_LIMIT:g}[/red]"
    console.print(f"parity on {parity.galaxies} galaxies ({'the files given' if check else 'of its test part'}): "
                  f"max |exported - PyTorch| = {parity.max_difference:.2e} {verdict}")
    return 0 if parity.passed else 1
