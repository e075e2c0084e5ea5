"""`python -m galaxy_tui.fetching.fetch_worker JOB_FOLDER`: one fetch job (see fetch_jobs), started by the
launcher like any run: fetch what the request names, say how many bytes have arrived in status.json (at most
twice a second), end `finished` with the dataset registered. On SIGTERM it ends `stopped` after the bytes in
flight; the part kept on disk lets the next fetch go on from there."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from galaxy_tui.atomic import read_json
from galaxy_tui.executors.job_worker import Stopped, run_worker, write_status
from galaxy_tui.fetching.fetch import fetch

EVERY_S = 0.5


def run_job(folder: Path, stop: list[bool]) -> None:
    request = read_json(folder / "request.json") or {}
    name = str(request["name"])
    files: dict[str, tuple[int, int | None]] = {}
    said = [0.0]

    def progress(file: str, done: int, total: int | None) -> None:
        files[file] = (done, total)
        if stop:
            raise Stopped(f"stopped after {sum(d for d, _ in files.values()) / 1e6:.1f} MB; fetch again to go on "
                          f"from there")
        if time.monotonic() - said[0] >= EVERY_S:
            said[0] = time.monotonic()
            write_status(folder, "fetching", done=sum(d for d, _ in files.values()),
                         total=sum(t or 0 for _, t in files.values()), message=f"downloading {file}")

    write_status(folder, "fetching", message="asking the source for the sizes")
    fetched = fetch(Path(request["workspace"]), name, Path(request["to"]) if request.get("to") else None,
                    request.get("mirror"), progress)
    total = sum(path.stat().st_size for path in fetched.folder.iterdir() if path.is_file())
    write_status(folder, "finished", done=total, total=total,
                 message=f"{name} in {fetched.folder}" + (", registered in experiments.toml"
                                                         if fetched.registered else ""))


if __name__ == "__main__":
    sys.exit(run_worker(run_job))
