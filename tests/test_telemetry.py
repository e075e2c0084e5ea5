"""Telemetry through a fake NVML of the real module's shape: unsupported fields, no library, a lost GPU."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from galaxy_tui.telemetry import NvmlTelemetry, TelemetrySampler


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNvml:
    """Simulates NVML for two GPUs; GPU 1 does not support power readings."""
    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, count: int = 2, init_error: int | None = None):
        self.count, self.init_error, self.lost = count, init_error, set()
        self.uuids = [f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}" for i in range(count)]  # NVML's (PCI) order

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def _check(self, h: int) -> None:
        if h in self.lost:
            raise NVMLError(15)

    def nvmlDeviceGetName(self, h: int) -> bytes:
        self._check(h)
        return b"Fake A100"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        self._check(h)
        return SimpleNamespace(used=(h + 1) * 2**30, total=40 * 2**30, free=0)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._check(h)
        if h == 1:
            raise NVMLError(3)
        return 251_500  # milliwatts

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        self._check(h)
        if h == 1:
            raise NVMLError(3)
        return 400_000

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        self._check(h)
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        self._check(h)
        return 71

    def nvmlDeviceGetUUID(self, h: int) -> str:
        self._check(h)
        return self.uuids[h]

    counter = True  # GPU 0's energy counter (Volta and later); GPU 1 has none

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        self._check(h)
        if h == 1 or not self.counter:
            raise NVMLError(3)
        import time
        return int(time.monotonic() * 251_500)  # millijoules at a steady 251.5 W


def test_fields_convert_and_unsupported_reads_as_none() -> None:
    reading = NvmlTelemetry(FakeNvml()).sample()
    assert reading.available and len(reading.gpus) == 2
    first, second = reading.gpus
    assert first.power_w == 251.5 and first.power_limit_w == 400.0 and first.mem_used == 2**30
    assert first.util == 97 and first.temp_c == 71 and first.name == "Fake A100"
    assert second.power_w is None and second.power_limit_w is None  # N/A, not 0
    assert second.mem_total == 40 * 2**30


def test_no_library_or_driver_is_a_plain_state() -> None:
    reading = NvmlTelemetry(FakeNvml(init_error=12)).sample()
    assert not reading.available and reading.reason.startswith("no NVIDIA GPU")
    assert not NvmlTelemetry(FakeNvml(count=0)).sample().available


def test_a_lost_gpu_is_marked_not_raised() -> None:
    nvml = FakeNvml()
    telemetry = NvmlTelemetry(nvml)
    nvml.lost.add(0)
    first, second = telemetry.sample().gpus
    assert first.lost and first.mem_used is None
    assert not second.lost and second.util == 97


def _nvidia_driver_present() -> bool:
    import ctypes
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def test_real_nvml_on_this_machine_says_what_it_finds() -> None:
    """The real nvidia-ml-py: on a box with the NVIDIA driver and a device it reads GPUs; without one it
    says "no NVIDIA GPU" (never raises). Which branch must hold is decided by the hardware, not the result."""
    reading = NvmlTelemetry().sample()
    if _nvidia_driver_present():
        assert reading.available and reading.gpus and all(g.uuid for g in reading.gpus), reading.reason
    else:
        assert not reading.available and reading.reason.startswith("no NVIDIA GPU")


def test_sampler_keeps_the_latest_reading() -> None:
    sampler = TelemetrySampler(NvmlTelemetry(FakeNvml())).start()
    import time
    deadline = time.monotonic() + 5
    while not sampler.latest.available and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert sampler.latest.available and sampler.history


def test_a_slow_nvml_start_happens_in_the_samplers_thread_not_the_apps() -> None:
    """Simulates a GPU box where nvmlInit takes a while (no persistence daemon): making the telemetry
    returns at once; NVML starts in the sampler's thread."""
    import threading
    import time

    class SlowStart(FakeNvml):
        def nvmlInit(self) -> None:
            self.started_in = threading.current_thread().name
            time.sleep(0.5)
            super().nvmlInit()

    nvml = SlowStart()
    began = time.monotonic()
    sampler = TelemetrySampler(NvmlTelemetry(nvml))
    assert time.monotonic() - began < 0.2 and not hasattr(nvml, "started_in")
    sampler.start()
    deadline = time.monotonic() + 5
    while not sampler.latest.available and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert sampler.latest.available and nvml.started_in == "telemetry"


def test_worker_gpu_logger_emits_gpu_events(tmp_path) -> None:  # noqa: ANN001
    """Simulated NVML with two GPUs: the worker's logger writes a `gpu` event per GPU per sample."""
    import time

    from galaxy_tui.events import read_events
    from galaxy_tui.train.reporting import GpuLogger, Reporter
    reporter = Reporter(tmp_path, writes=True)
    nvml = FakeNvml()
    run_uuids = [u.removeprefix("GPU-") for u in nvml.uuids]  # torch's spelling: no "GPU-" prefix
    logger = GpuLogger(reporter, run_uuids, interval_s=0.05, telemetry=NvmlTelemetry(nvml)).start()
    time.sleep(0.3)
    logger.stop()
    reporter.close()
    gpu = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "gpu"]
    assert {e["index"] for e in gpu} == {0, 1} and len(gpu) >= 4
    assert gpu[0]["power_w"] == 251.5 and gpu[1]["power_w"] is None


def test_worker_host_logger_emits_its_own_cpu_and_memory(tmp_path) -> None:  # noqa: ANN001
    import os
    import time

    import psutil

    from galaxy_tui.events import read_events, well_formed
    from galaxy_tui.run_model import RunModel
    from galaxy_tui.train.reporting import HostLogger, Reporter
    reporter = Reporter(tmp_path, writes=True)
    logger = HostLogger(reporter, interval_s=0.05).start()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # keep a core busy, so the CPU figure is this process's work
        sum(range(1000))
    logger.stop()
    reporter.close()
    host = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "host"]
    assert len(host) >= 3 and all(well_formed(e) for e in host)
    assert max(e["cpu_percent"] for e in host) > 20
    rss = psutil.Process(os.getpid()).memory_info().rss
    assert 0.5 * rss < host[-1]["rss_bytes"] < 2 * rss
    model = RunModel()
    model.apply(host)
    assert model.host == host


def test_gpu_events_are_the_runs_devices_matched_by_uuid(tmp_path) -> None:  # noqa: ANN001
    """Simulates a shared 4-GPU box: NVML counts in PCI order, the run sees CUDA_VISIBLE_DEVICES=2,0
    (so its cuda:0 is NVML's GPU 2). Events carry the run's CUDA index and only its GPUs."""
    import time

    from galaxy_tui.events import read_events
    from galaxy_tui.telemetry import for_run
    from galaxy_tui.train.reporting import GpuLogger, Reporter
    nvml = FakeNvml(count=4)
    run_uuids = [nvml.uuids[2].removeprefix("GPU-"), nvml.uuids[0].removeprefix("GPU-")]
    reporter = Reporter(tmp_path, writes=True)
    logger = GpuLogger(reporter, run_uuids, interval_s=0.05, telemetry=NvmlTelemetry(nvml)).start()
    time.sleep(0.3)
    logger.stop()
    reporter.close()
    gpu = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "gpu"]
    assert gpu and {(e["index"], e["nvml_index"]) for e in gpu} == {(0, 2), (1, 0)}
    paired = for_run(NvmlTelemetry(nvml).sample().gpus, run_uuids)
    assert [(cuda, g.index) for cuda, g in paired] == [(0, 2), (1, 0), (None, 1), (None, 3)]


def _energy_between(logger, seconds: float):  # noqa: ANN001, ANN202
    import time
    first, _ = logger.energy()
    time.sleep(seconds)
    second, how = logger.energy()
    return (None if first is None or second is None else second - first), how


def test_energy_comes_from_the_counter_or_integrated_power_or_says_why_not(tmp_path) -> None:  # noqa: ANN001
    """Simulated NVML: GPU 0 has an energy counter and power at 251.5 W; GPU 1 has neither."""
    from galaxy_tui.train.reporting import GpuLogger, Reporter
    nvml = FakeNvml()
    reporter = Reporter(tmp_path, writes=True)
    first_gpu = [nvml.uuids[0]]
    counted = GpuLogger(reporter, first_gpu, telemetry=NvmlTelemetry(nvml), power_every_s=0.05).start()
    joules, how = _energy_between(counted, 0.3)
    assert how == "NVML energy counter" and joules == pytest.approx(251.5 * 0.3, rel=0.2)
    counted.stop()
    nvml.counter = False  # an older GPU: no counter, power only
    integrated = GpuLogger(reporter, first_gpu, telemetry=NvmlTelemetry(nvml), power_every_s=0.05).start()
    joules, how = _energy_between(integrated, 0.4)
    assert how.startswith("power samples") and joules == pytest.approx(251.5 * 0.4, rel=0.35)
    integrated.stop()
    blind = GpuLogger(reporter, [nvml.uuids[1]], telemetry=NvmlTelemetry(nvml), power_every_s=0.05).start()
    assert blind.energy() == (None, "this GPU reports neither an energy counter nor power draw")
    blind.stop()
    no_gpu = GpuLogger(reporter, [], telemetry=NvmlTelemetry(FakeNvml(init_error=12)))
    joules, how = no_gpu.energy()
    assert joules is None and how.startswith("no NVIDIA GPU")
    reporter.close()


def test_the_energy_summary_reads_the_epoch_events() -> None:
    from galaxy_tui.run_model import RunModel
    model = RunModel()
    model.apply([{"type": "epoch", "epoch": 1, "step": 3, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
                  "seconds": 1.0, "energy_j": 1500.0, "images_per_j": 2.5, "energy_note": "NVML energy counter"},
                 {"type": "epoch", "epoch": 2, "step": 6, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
                  "seconds": 1.0, "energy_j": 1700.0, "images_per_j": 2.2, "energy_note": "NVML energy counter"}])
    assert model.energy_summary() == "energy 3.2 kJ, 2.2 images/J (NVML energy counter)"
    blind = RunModel()
    blind.apply([{"type": "epoch", "epoch": 1, "step": 3, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
                  "seconds": 1.0, "energy_j": None, "energy_note": "no NVIDIA GPU (simulated)"}])
    assert blind.energy_summary() == "energy N/A: no NVIDIA GPU (simulated)"
