"""What the benches that train through the CLI share: the real SDSS cut-outs beside the checkout, a throwaway
workspace written from a dict, training one of its experiments as a user would, and the run folder it made."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "gz1_small"
SDSS_3_CLASSES = {"kind": "image-folder", "path": str(REALDATA), "exclude": ["4_dont_know", "5_merger"],
                  "merge": {"spiral": ["1_spiral_clockwise", "2_spiral_anticlockwise"]}}


@contextmanager
def workspace(raw: dict[str, Any], real: bool = True) -> Iterator[Path]:
    """A temporary workspace holding `raw` as its experiments.toml; SystemExit(1) without the real cut-outs
    (where `real`: the benches that read them)."""
    if real and not REALDATA.is_dir():
        print(f"the real SDSS cut-outs are not beside this checkout ({REALDATA})")
        raise SystemExit(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "experiments.toml").write_text(tomli_w.dumps(raw))
        yield root


def train(root: Path, experiment: str) -> str:
    """`galaxy-tui train EXPERIMENT` in the workspace; the id of the run it made."""
    subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "train", experiment],
                   check=True, capture_output=True)
    return sorted(p.name for p in (root / "runs").iterdir() if p.name.startswith(experiment + "-"))[-1]
