"""`galaxy-tui doctor`: the checks in order, each timed, each turned into FAIL with its message (never a traceback)
when it raises; NVML sampled while the throughput check trains, for the telemetry check."""

from __future__ import annotations

import importlib.metadata
import time
import traceback
from collections.abc import Callable

from galaxy_tui.doctor import compute, environment, system
from galaxy_tui.doctor.report import FAIL, Check, Report
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


def run_doctor(quick: bool, devices: int | None, progress: Progress = lambda _name: None) -> Report:
    started = time.perf_counter()
    report = Report(importlib.metadata.version("galaxy-tui"), time.strftime("%Y-%m-%d %H:%M:%S"), quick)
    nvml = environment.nvml_reading()
    cuda = environment.cuda_devices()
    sampler = TelemetrySampler(NvmlTelemetry()) if cuda and nvml.available else None

    def throughput() -> Check:
        if sampler is not None:
            sampler.start()
        try:
            return compute.throughput(quick)
        finally:
            if sampler is not None:
                sampler.stop()

    checks: list[tuple[str, Callable[[], Check]]] = [
        ("environment", lambda: environment.environment(nvml)),
        ("devices", lambda: environment.devices(cuda, nvml)),
        ("precision", lambda: compute.precision(bool(cuda))),
        ("probe", lambda: compute.probe(quick)),
        ("throughput", throughput),
        ("oom recovery", compute.oom_recovery),
        ("several devices", lambda: system.several_devices(devices, quick)),
        ("telemetry", lambda: system.telemetry(sampler.history if sampler else [], [cuda[0].uuid] if cuda else [])),
        ("detached run", system.detached_run),
    ]
    for name, check in checks:
        progress(name)
        report.checks.append(_timed(name, check))
    report.seconds = time.perf_counter() - started
    return report
