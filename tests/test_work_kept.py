"""Work is never lost or silently redone: a resume needs its last checkpoint, a stopped re-evaluation leaves the
run finished with its results."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from galaxy_tui.atomic import read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry, update_registry
from galaxy_tui.runs import launch, reevaluate, run_info, stop_run
from workspace_fixture import tiny_workspace, wait_final, wait_for


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_resume_without_last_pt_refuses_and_keeps_best_pt(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    best = run.dir / "checkpoints" / "best.pt"
    kept = digest(best)
    (run.dir / "checkpoints" / "last.pt").unlink()
    update_registry(registry.path, lambda raw: raw["experiments"]["tiny"].update(epochs=3))
    with pytest.raises(GalaxyError, match="cannot be resumed.*--skip evaluates best.pt.*--restart"):
        launch(load_registry(registry.path), "tiny", "resume")
    assert digest(best) == kept and run_info(run.dir).attempt == 1


@pytest.mark.slow
def test_a_worker_asked_to_resume_without_last_pt_fails_and_keeps_best_pt(tmp_path: Path) -> None:
    """Simulates last.pt vanishing between the launch's check and the worker's start."""
    from galaxy_tui.train.worker import main as worker_main
    registry = tiny_workspace(tmp_path, epochs=1, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    kept = digest(run.dir / "checkpoints" / "best.pt")
    (run.dir / "checkpoints" / "last.pt").unlink()
    assert worker_main([str(run.dir), "--mode", "resume"]) == 1
    status = read_json(run.dir / "status.json")
    assert status["state"] == "failed" and "last.pt is missing" in status["message"]
    assert digest(run.dir / "checkpoints" / "best.pt") == kept


@pytest.mark.slow
def test_a_stopped_reevaluation_leaves_the_run_finished_with_its_results(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, epochs=1, count=600, extra={"max_steps_per_epoch": 2})
    run = wait_final(launch(registry, "tiny"))
    metrics = digest(run.dir / "results" / "metrics.json")
    again = reevaluate(registry, run.id, tta=True)
    wait_for(lambda: run_info(run.dir).state in ("preparing", "evaluating"), timeout=60, poll=0.02)
    stop_run(registry, run.id)
    ended = wait_final(again)
    assert ended.state == "finished", ended.message
    assert "earlier results" in ended.message
    assert digest(run.dir / "results" / "metrics.json") == metrics
