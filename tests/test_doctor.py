"""`galaxy-tui doctor`. Here (no GPU) the CPU path runs end to end: the environment, the real probe and throughput
on the CPU, OOM recovery through the injection seam, two CPU ranks through torchrun over gloo, a detached run; the
GPU-only checks say SKIP with the reason. The GPU checks' judgements are tested through seams: a fake NVML with four
GPUs that CUDA_VISIBLE_DEVICES shuffles (and a planted mismatch), and NVML readings of power and energy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from test_telemetry import FakeNvml

from galaxy_tui.doctor.environment import CudaDevice, devices
from galaxy_tui.doctor.report import FAIL, LAST_REPORT, PASS, REPORT_SCHEMA, SKIP
from galaxy_tui.doctor.system import several_devices, telemetry
from galaxy_tui.telemetry import GpuSample, NvmlTelemetry, Reading


def visible(nvml: FakeNvml, order: list[int]) -> list[CudaDevice]:
    """What torch reports under CUDA_VISIBLE_DEVICES=<order>: CUDA renumbers from 0; UUIDs without NVML's prefix."""
    return [CudaDevice(cuda, "Fake A100", (8, 0), 40 * 2**30, nvml.uuids[physical].removeprefix("GPU-"))
            for cuda, physical in enumerate(order)]


def test_shuffled_devices_are_matched_by_uuid_and_a_planted_mismatch_fails() -> None:
    nvml = FakeNvml(count=4)
    reading = NvmlTelemetry(nvml).sample()
    shuffled = devices(visible(nvml, [2, 0]), reading)  # CUDA_VISIBLE_DEVICES=2,0
    assert shuffled.status == PASS and "cuda:0 is NVML GPU 2" in shuffled.summary and "cuda:1 is NVML GPU 0" in \
        shuffled.summary
    assert [row["nvml"] for row in shuffled.figures["devices"]] == [[2], [0]]
    planted = visible(nvml, [3, 1])
    planted[1] = CudaDevice(1, "Fake A100", (8, 0), 40 * 2**30, "ffffffff-0000-0000-0000-000000000000")
    mismatch = devices(planted, reading)
    assert mismatch.status == FAIL and "cuda:1" in mismatch.summary and "matches 0 NVML devices" in mismatch.summary
    slice_ = CudaDevice(0, "NVIDIA A100-SXM4-40GB MIG 1g.5gb", (8, 0), 5 * 2**30,
                        "8f1c0000-1111-2222-3333-444455556666")
    mig = devices([slice_], reading)
    assert mig.status == PASS and "1 MIG slice" in mig.summary  # its own UUID: NVML lists the whole GPUs
    twice = devices(visible(nvml, [1, 1]), reading)
    assert twice.status == FAIL and "NVML GPU 1 answers to cuda:0 and cuda:1" in twice.summary


def test_gpus_torch_cannot_see_are_a_failure_and_no_gpu_at_all_a_skip() -> None:
    assert devices([], Reading(False, "no NVIDIA GPU")).status == SKIP
    hidden = devices([], NvmlTelemetry(FakeNvml(count=2)).sample())
    assert hidden.status == FAIL and "torch sees none" in hidden.summary
    blind = devices(visible(FakeNvml(count=1), [0]), Reading(False, "no NVIDIA GPU (driver)"))
    assert blind.status == FAIL and "NVML does not" in blind.summary


def readings(power_w: float, counter_rate: float, uuid: str = "GPU-1", seconds: int = 10) -> list[Reading]:
    """NVML as sampled once a second: steady power, and an energy counter rising at `counter_rate` x power."""
    return [Reading(True, "", (GpuSample(0, uuid=uuid, power_w=power_w, energy_j=1000 + counter_rate * power_w * t,
                                         mem_used=2**30),
                               GpuSample(1, uuid="GPU-other", power_w=50.0, energy_j=5.0 * t)), t=float(t))
            for t in range(seconds)]


def test_the_energy_counter_is_held_to_the_integrated_power_of_the_gpus_in_use() -> None:
    agreeing = telemetry(readings(300.0, 1.03), ["1"])
    assert agreeing.status == PASS and len(agreeing.figures["gpus"]) == 1  # the other GPU is not ours
    assert agreeing.figures["gpus"][0]["ratio"] == pytest.approx(1.03)
    off = telemetry(readings(300.0, 1.25), ["1"])
    assert off.status == FAIL and "1.25" in off.summary
    silent = [Reading(True, "", (GpuSample(0, uuid="GPU-1"),), t=float(t)) for t in range(5)]
    assert telemetry(silent, ["1"]).status == SKIP and telemetry([], []).status == SKIP


@pytest.mark.slow
def test_two_cpu_ranks_train_alike_and_an_oom_on_one_rank_ends_the_attempt_then_a_resume_reprobes(
        cpu_ranks: None) -> None:
    check = several_devices(2, quick=False)
    assert check.status == PASS, check
    assert check.figures["allreduce"]["sum_ok"] and check.figures["allreduce"]["bus_gb_per_s"] > 0
    assert check.figures["oom_on_rank_1"] == "failed" and check.figures["resumed"] == "finished"
    assert len(set(map(tuple, check.figures["weight_sums"].values()))) == 1


@pytest.mark.slow
def test_doctor_runs_what_a_cpu_box_can_and_writes_a_report_that_fits_its_schema(tmp_path: Path,
                                                                                  cpu_ranks: None) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "doctor", "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert json.loads((tmp_path / LAST_REPORT).read_text()) == report
    status = {check["name"]: check["status"] for check in report["checks"]}
    assert status == {"environment": PASS, "devices": SKIP, "precision": SKIP, "probe": PASS, "throughput": PASS,
                      "oom recovery": PASS, "several devices": SKIP, "telemetry": SKIP, "detached run": PASS}
    skipped = {check["name"]: check["summary"] for check in report["checks"] if check["status"] == SKIP}
    assert all(reason for reason in skipped.values()) and skipped["precision"] == "needs a CUDA GPU"
    probe = next(check for check in report["checks"] if check["name"] == "probe")["figures"]
    assert probe["model"] == "resnet18 224 px" and probe["peak_gib"] <= probe["budget_gib"] and probe["trials"]
    assert "no check failed" in done.stdout


async def test_the_palette_s_doctor_shows_the_last_report(tmp_path: Path) -> None:
    from galaxy_tui.app.doctor_view import DoctorView
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.doctor.report import Check, Report
    from pilot_helpers import NoGpu, screen_text, until
    app = GalaxyApp(tmp_path, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.action_doctor()
        await until(pilot, lambda: isinstance(app.screen, DoctorView) and "No report yet" in screen_text(app))
        assert "galaxy-tui doctor" in screen_text(app)
        await pilot.press("escape")
        Report("0.1.0", "2026-12-07 05:00:00", True, [Check("probe", PASS, "micro-batch 16 of 16", {"trials": 2}),
                                                      Check("telemetry", SKIP, "needs a CUDA GPU")]).save(
            tmp_path / LAST_REPORT)
        app.action_doctor()
        await until(pilot, lambda: isinstance(app.screen, DoctorView) and "micro-batch 16 of 16" in screen_text(app))
        assert "needs a CUDA GPU" in screen_text(app) and "SKIP" in screen_text(app)
