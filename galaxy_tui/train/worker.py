"""The worker process: `python -m galaxy_tui.train.worker RUN_DIR --mode train|resume|evaluate|boost|curate`.

One attempt of a run (train/attempt.py: the frozen run, the ranks, events and status.json, the stop flag)
prepares its galaxies and builds its model, then hands them to its job: training then evaluation
(training_job, evaluation_job), an evaluation alone, features and boosting (boosting_job), or the embedding
and curation lists (curation_job). On SIGTERM it
finishes the step, writes the last checkpoint and exits 0 as `stopped`. Under torchrun, rank 0 alone writes
events, status and checkpoints.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from galaxy_tui.errors import GalaxyError, storage_problem
from galaxy_tui.train.attempt import Attempt, StopRequested
from galaxy_tui.train.boosting_job import boost
from galaxy_tui.train.curation_job import curate
from galaxy_tui.train.evaluation_job import evaluate
from galaxy_tui.train.loop import RunFailed
from galaxy_tui.train.training_job import train

MODES = ("train", "resume", "evaluate", "boost", "curate")


def run(attempt: Attempt) -> int:
    attempt.begin()
    prepared = attempt.prepare()
    attempt.start_collectives()
    trainer = attempt.trainer(prepared)
    if attempt.mode == "evaluate":
        return evaluate(attempt, prepared, trainer)
    if attempt.mode == "boost":
        return boost(attempt, prepared, trainer)
    if attempt.mode == "curate":
        return curate(attempt, prepared, trainer)
    if not train(attempt, prepared, trainer):
        return 0  # stopped, with its last checkpoint
    return evaluate(attempt, prepared, trainer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="galaxy_tui.train.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--mode", choices=MODES, default="train")
    args = parser.parse_args(argv)
    try:
        attempt = Attempt(args.run_dir.resolve(), args.mode)
    except (GalaxyError, OSError) as exc:  # nothing of the run can be written: the log says why
        print(f"galaxy-tui worker: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        code = _run_reporting(attempt)
    finally:
        attempt.close()
    if attempt.world > 1:
        # The process group is destroyed; skip the interpreter's teardown, where gloo's threads can still hold
        # Python objects and abort the process (SIGABRT, "terminate called"), which srun takes for a failed task.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run_reporting(attempt: Attempt) -> int:
    """Run the attempt; how it ended goes to its events and status.json, and the exit code says it."""
    try:
        return run(attempt)
    except StopRequested:
        attempt.stopped_early()
        return 0
    except (GalaxyError, RunFailed) as exc:
        print(f"galaxy-tui worker: {exc}", file=sys.stderr)
        attempt.fail(str(exc))
        return 1
    except Exception as exc:  # a bug: keep the traceback in worker.log and the event
        problem = storage_problem(exc) if isinstance(exc, OSError) else None
        if problem is not None:  # a full, read-only or forbidden disk: a message, not a bug's traceback
            print(f"galaxy-tui worker: {problem}", file=sys.stderr)
            attempt.fail(problem)
            return 1
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        attempt.fail_after_peer(f"{type(exc).__name__}: {exc}", trace)
        return 1


if __name__ == "__main__":
    sys.exit(main())
