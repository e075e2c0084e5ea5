"""`python -m galaxy_tui.inference.predict_worker JOB_FOLDER`: one predict job the workbench started
(see predict_jobs): classify the requested files and folders with the run's best model, say how far it
got in status.json as it goes, and leave predictions.csv (and skipped.csv) in the job's folder."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.inference.galaxy_sources import file_items
from galaxy_tui.inference.predict_jobs import write_job_status
from galaxy_tui.inference.predicting import predict_items, save_predictions
from galaxy_tui.inference.servable import load_run


def run_job(folder: Path) -> None:
    request = read_json(folder / "request.json") or {}
    items, collected = file_items([Path(path).expanduser() for path in request.get("paths", [])])
    if not items:
        raise GalaxyError(f"no image files in {', '.join(request.get('paths', [])) or 'the request'}"
                          + (f" ({len(collected.skipped)} files are not images)" if collected.skipped else ""))
    write_job_status(folder, "predicting", done=0, total=len(items), message="loading the model")
    loaded = load_run(folder.parents[1])
    started = time.perf_counter()
    predicted = predict_items(loaded, items, progress=lambda done, total: write_job_status(
        folder, "predicting", done=done, total=total, message=f"on {loaded.device}"))
    predicted.skipped = [(str(path), why) for path, why in collected.skipped] + predicted.skipped
    save_predictions(folder / "predictions.csv", loaded, predicted)
    write_job_status(folder, "finished", done=len(items), total=len(items), classified=len(predicted.ids),
                     skipped=len(predicted.skipped), seconds=round(time.perf_counter() - started, 2),
                     message=f"{len(predicted.ids)} classified on {loaded.device}"
                             + (f", {len(predicted.skipped)} skipped (not images or unreadable)"
                                if predicted.skipped else ""))


def main() -> int:
    folder = Path(sys.argv[1]).resolve()
    try:
        run_job(folder)
    except Exception as exc:  # the job's last word goes to its status; the details to worker.log
        traceback.print_exc()
        message = str(exc) if isinstance(exc, GalaxyError) else f"{type(exc).__name__}: {exc}"
        write_job_status(folder, "failed", message=message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
