"""`galaxy-tui doctor`: the checks in order, each timed, each turned into FAIL with its message (never a traceback)
when it raises; NVML sampled while the throughput check trains, for the telemetry check."""

from __future__ import annotations

import importlib.metadata
import time
import traceback
from collections.abc import Callable

from galaxy_tui.doctor.compute import oom_recovery, precision, probe, throughput
from galaxy_tui.doctor.environment import cuda_devices, devices, environment, nvml_reading
from galaxy_tui.doctor.report import FAIL, Check, Report
from galaxy_tui.doctor.system import detached_run, several_devices, telemetry
from galaxy_tui.telemetry import NvmlTelemetry, TelemetrySampler

Progress = Callable[[str], None]


def _timed(name: str, check: Callable[[], Check]) -> Check:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - a check that breaks is a FAIL that says why
        result = Check(name, FAIL, f"{type(exc).__name__}: {exc}",
                       {"where": traceback.extract_tb(exc.__traceback__)[-1].name})
    result.seconds = time.perf_counter() - started
    return result


def run_doctor(quick: bool, ranks: int | None, progress: Progress = lambda _name: None) -> Report:
    started = time.perf_counter()
    report = Report(importlib.metadata.version("galaxy-tui"), time.strftime("%Y-%m-%d %H:%M:%S"), quick)
    nvml = nvml_reading()
    cuda = cuda_devices()
    sampler = TelemetrySampler(NvmlTelemetry()) if cuda and nvml.available else None

    def sampled_throughput() -> Check:
        if sampler is not None:
            sampler.start()
        try:
            return throughput(quick)
        finally:
            if sampler is not None:
                sampler.stop()

    checks: list[tuple[str, Callable[[], Check]]] = [
        ("environment", lambda: environment(nvml)),
        ("devices", lambda: devices(cuda, nvml)),
        ("precision", lambda: precision(bool(cuda))),
        ("probe", lambda: probe(quick)),
        ("throughput", sampled_throughput),
        ("oom recovery", oom_recovery),
        ("several devices", lambda: several_devices(ranks, quick)),
        ("telemetry", lambda: telemetry(sampler.history if sampler else [], [cuda[0].uuid] if cuda else [])),
        ("detached run", detached_run),
    ]
    for name, check in checks:
        progress(name)
        report.checks.append(_timed(name, check))
    report.seconds = time.perf_counter() - started
    return report
