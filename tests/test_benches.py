"""Every benchmark still runs (on tiny sizes): benchmarks live outside the suite's timing, so without this
an API change would leave a script that README quotes broken. No figure is asserted, only that each
script completes and prints its comparison."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import REALDATA

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench(name: str) -> ModuleType:
    """Imports bench/NAME.py as `python bench/NAME.py` would run it: with bench/ first on the path, so the
    scripts' shared helpers (bench/cli_workspace.py) import."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_bench_script_imports() -> None:
    for path in sorted(BENCH.glob("bench_*.py")):
        assert callable(bench(path.stem).main), path


def test_bench_probe_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_probe")
    monkeypatch.setattr(module, "CAPACITIES_GIB", (6, 24))
    module.main()
    out = capsys.readouterr().out
    assert "lightning power" in out and "accelerate (128)" in out and "relative to ours" in out


def test_bench_loop_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_loop")
    for name, value in {"ROUNDS": 2, "STEPS_PER_ROUND": 1, "BATCH": 4, "N": 4}.items():
        monkeypatch.setattr(module, name, value)
    module.main()
    assert capsys.readouterr().out.count("us per step") == 2


def test_bench_catalog_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_catalog")
    monkeypatch.setattr(module, "ROWS", 200)
    module.main()
    assert "faster than usecols" in capsys.readouterr().out


def test_bench_feed_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_feed")
    monkeypatch.setattr(sys, "argv", ["bench_feed", "--images", "32", "--batch", "8", "--step-ms", "1",
                                      "--epochs", "1"])
    module.main()
    assert "less data wait" in capsys.readouterr().out


def test_bench_cache_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                          tmp_path: Path) -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"the real SDSS cut-outs are not beside the project ({REALDATA})")
    for folder in sorted(REALDATA.glob("[0-3]_*")):  # two real galaxies from each of four classes
        (tmp_path / folder.name).mkdir()
        for source in sorted(folder.glob("*.jpeg"))[:2]:
            shutil.copyfile(source, tmp_path / folder.name / source.name)
    module = bench("bench_cache")
    monkeypatch.setattr(module, "REAL", tmp_path)
    module.main()
    out = capsys.readouterr().out
    assert out.startswith("80 distinct JPEGs") and "one-off cache build" in out


def test_bench_serve_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_serve")
    monkeypatch.setattr(sys, "argv", ["bench_serve", "--requests", "24", "--concurrency", "4", "--model", "tiny-cnn",
                                      "--size", "32"])
    module.main()
    out = capsys.readouterr().out
    assert "batched vs one per request: throughput x" in out and "one per request" in out


def test_bench_similar_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_similar")
    monkeypatch.setattr(sys, "argv", ["bench_similar", "--galaxies", "3000", "--features", "64", "--repeats", "1"])
    module.main()
    out = capsys.readouterr().out
    assert "ours: chunked float16 product" in out and "NearestNeighbors" in out and "100%" in out


def test_bench_curation_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = bench("bench_curation")
    monkeypatch.setattr(sys, "argv", ["bench_curation", "--count", "400", "--size", "32", "--epochs", "1",
                                      "--mislabel", "0.1", "--rare", "0.05", "--seeds", "1", "--speed-count", "40"])
    module.main()
    out = capsys.readouterr().out
    assert "likely wrong labels" in out and "IsolationForest on raw pixels" in out
    assert re.search(r"256px\s+\d+/s\s+\d+/s\s+\d+/s", out)  # the morphology's speed, ours beside the plain ways
    if REALDATA.is_dir():
        assert re.search(r"merger\s+20\s", out)
