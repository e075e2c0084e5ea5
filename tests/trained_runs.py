"""Runs trained once per test session and shared by the tests that use a trained model (predict, export,
serve, the predict dialog): a demo run, a vote-fraction demo run and a run on the real SDSS JPEGs as an image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomli_w

from galaxy_tui.registry import load_registry
from galaxy_tui.runs import RunInfo, launch
from workspace_fixture import tiny_workspace, wait_final

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "gz1_small"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"the real SDSS cut-outs are not beside this "
                                                                  f"checkout ({REALDATA})")


def finished(run: RunInfo) -> RunInfo:
    run = wait_final(run)
    assert run.state == "finished", (run.dir / "worker.log").read_text()[-3000:]
    return run


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunInfo]:
    root = tmp_path_factory.mktemp("predict-demo")
    registry = tiny_workspace(root, epochs=1, count=400)
    return root, finished(launch(registry, "tiny"))


@pytest.fixture(scope="session")
def fraction_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunInfo]:
    """A vote-fraction run on the demo (its answers, not classes)."""
    root = tmp_path_factory.mktemp("predict-fractions")
    registry = tiny_workspace(root, epochs=1, count=300, extra={"task": "vote-fractions"})
    return root, finished(launch(registry, "tiny"))


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunInfo]:
    """A run trained on the real SDSS JPEGs as an image-folder dataset (one class per folder)."""
    if not REALDATA.is_dir():
        pytest.skip(needs_realdata.kwargs["reason"])
    root = tmp_path_factory.mktemp("predict-folder")
    shutil.copytree(REALDATA, root / "gz1", ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
           "datasets": {"gz1": {"kind": "image-folder", "path": "gz1"}},
           "experiments": {"gz1": {"dataset": "gz1", "model": "tiny-cnn", "image_size": 32, "epochs": 1,
                                   "micro_batch": 16, "effective_batch": 16, "mistakes": 2}}}
    (root / "experiments.toml").write_text(tomli_w.dumps(raw))
    return root, finished(launch(load_registry(root / "experiments.toml"), "gz1"))
