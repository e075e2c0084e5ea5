"""`python -m galaxy_tui.inference.predict_worker JOB_FOLDER`: one predict job (see predict_jobs), started by
the launcher like any run: classify the requested files and folders with the run's best model, say how far it
got in status.json as it goes, and leave predictions.csv (and skipped.csv) in the job's folder. On SIGTERM it
ends `stopped` at its next batch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from galaxy_tui.analysis.domain import UNLIKE
from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.executors.job_worker import Stopped, run_worker, write_status
from galaxy_tui.inference.galaxy_sources import file_items
from galaxy_tui.inference.predicting import predict_items, save_predictions
from galaxy_tui.inference.servable import load_run


def run_job(folder: Path, stop: list[bool]) -> None:
    request = read_json(folder / "request.json") or {}
    items, collected = file_items([Path(path).expanduser() for path in request.get("paths", [])])
    if not items:
        raise GalaxyError(f"no image files in {', '.join(request.get('paths', [])) or 'the request'}"
                          + (f" ({len(collected.skipped)} files are not images)" if collected.skipped else ""))
    write_status(folder, "predicting", done=0, total=len(items), message="loading the model")
    loaded = load_run(folder.parents[1])
    started = time.perf_counter()
    def progress(done: int, total: int) -> None:
        write_status(folder, "predicting", done=done, total=total, message=f"on {loaded.device}")
        if stop:
            raise Stopped(f"stopped after classifying {done} of {total} images; start it again to classify them all")

    predicted = predict_items(loaded, items, features=True, progress=progress)  # features: `s` in the dialog
    predicted.skipped = [(str(path), why) for path, why in collected.skipped] + predicted.skipped
    frame, _ = save_predictions(folder / "predictions.csv", loaded, predicted)
    unlike = int(frame["unlike_training"].sum()) if "unlike_training" in frame else 0
    write_status(folder, "finished", done=len(items), total=len(items), classified=len(predicted.ids),
                 skipped=len(predicted.skipped), seconds=round(time.perf_counter() - started, 2),
                 message=f"{len(predicted.ids)} classified on {loaded.device}"
                         + (f", {len(predicted.skipped)} skipped (not images or unreadable)"
                            if predicted.skipped else "")
                         + (f"; {unlike} {UNLIKE}" if unlike else ""))


if __name__ == "__main__":
    sys.exit(run_worker(run_job))
