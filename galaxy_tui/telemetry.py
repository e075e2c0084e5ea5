"""GPU telemetry through NVML (nvidia-ml-py's `pynvml`), with an honest "no NVIDIA GPU" state.

A field NVML does not support reads as None (shown N/A), never 0. No library, no driver or no
device is one plain state, never an exception. Torch-free: the UI samples it too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str = ""
    mem_used: int | None = None
    mem_total: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    util: int | None = None
    temp_c: int | None = None
    lost: bool = False
    uuid: str = ""
    energy_j: float | None = None   # NVML's energy counter since the driver loaded (Volta and later)

    def event_fields(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "mem_used": self.mem_used, "mem_total": self.mem_total,
                "power_w": self.power_w, "power_limit_w": self.power_limit_w, "util": self.util,
                "temp_c": self.temp_c, "lost": self.lost, "uuid": self.uuid, "energy_j": self.energy_j}


def same_gpu(a: str, b: str) -> bool:
    """NVML says "GPU-8f1c...", torch's device properties "8f1c..." (MIG slices "MIG-..."): compare the ids."""
    def bare(uuid: str) -> str:
        uuid = uuid.strip().lower()
        return uuid.split("-", 1)[1] if uuid[:4] in ("gpu-", "mig-") else uuid
    return bool(a) and bool(b) and bare(a) == bare(b)


def for_run(gpus: tuple[GpuSample, ...] | list[GpuSample], run_uuids: list[str]) -> list[tuple[int | None, GpuSample]]:
    """Pair NVML's devices with the run's CUDA devices by UUID: NVML counts in PCI order while CUDA
    orders fastest first and CUDA_VISIBLE_DEVICES renumbers, so "GPU0" need not be the run's cuda:0.
    The run's devices come first as (cuda index, sample), in CUDA order; every other GPU follows as
    (None, sample): on a shared box those are somebody else's."""
    ours: list[tuple[int | None, GpuSample]] = []
    taken: set[int] = set()
    for cuda_index, uuid in enumerate(run_uuids):
        match = next((g for g in gpus if same_gpu(g.uuid, uuid)), None)
        if match is not None:
            ours.append((cuda_index, match))
            taken.add(match.index)
    return ours + [(None, g) for g in gpus if g.index not in taken]


@dataclass(frozen=True)
class Reading:
    available: bool
    reason: str = ""
    gpus: tuple[GpuSample, ...] = ()
    t: float = field(default_factory=time.time)


class NvmlTelemetry:
    """`sample()` reads every GPU once. Pass `nvml` to use another module of the same shape (tests).

    NVML starts on the first sample, in the sampler's thread, not when this is made: on a box with many
    GPUs and no persistence daemon nvmlInit can take seconds, and the app's first paint must not wait."""

    def __init__(self, nvml: ModuleType | Any | None = None):
        self._nvml = nvml
        self._handles: list[Any] = []
        self._uuids: dict[int, str] = {}  # kept so a GPU that is lost is still known by its id
        self._reason = ""
        self._ready = False
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._init()

    def _init(self) -> None:
        try:
            if self._nvml is None:
                import pynvml
                self._nvml = pynvml
            self._nvml.nvmlInit()
            count = self._nvml.nvmlDeviceGetCount()
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except ImportError:
            self._reason = "no NVIDIA GPU (nvidia-ml-py is not installed)"
            return
        except Exception as exc:  # NVMLError subclasses: library or driver missing, no permission
            self._reason = f"no NVIDIA GPU ({exc})"
            return
        if not self._handles:
            self._reason = "no NVIDIA GPU (the driver reports no devices)"
            return
        self._ready = True

    @property
    def available(self) -> bool:
        self._start()
        return self._ready

    def _field(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except AttributeError:  # an older nvidia-ml-py without this query
            return None
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == getattr(self._nvml, "NVML_ERROR_GPU_IS_LOST", 15):
                raise
            return None

    def _one(self, index: int, handle: Any) -> GpuSample:
        nvml = self._nvml
        try:
            name = self._field(lambda: nvml.nvmlDeviceGetName(handle))
            memory = self._field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
            power = self._field(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
            limit = self._field(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
            rates = self._field(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
            temp = self._field(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            uuid = self._field(lambda: nvml.nvmlDeviceGetUUID(handle))
            energy = self._field(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except nvml.NVMLError:
            return GpuSample(index, lost=True, uuid=self._uuids.get(index, ""))
        return GpuSample(
            index=index,
            name=name.decode() if isinstance(name, bytes) else str(name or f"GPU {index}"),
            mem_used=int(memory.used) if memory is not None else None,
            mem_total=int(memory.total) if memory is not None else None,
            power_w=power / 1000.0 if power is not None else None,          # NVML reports milliwatts
            power_limit_w=limit / 1000.0 if limit is not None else None,
            util=int(rates.gpu) if rates is not None else None,
            temp_c=int(temp) if temp is not None else None,
            uuid=self._remember_uuid(index, uuid),
            energy_j=energy / 1000.0 if energy is not None else None,       # NVML reports millijoules
        )

    def _remember_uuid(self, index: int, uuid: Any) -> str:
        if uuid is not None:
            self._uuids[index] = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        return self._uuids.get(index, "")

    def sample(self) -> Reading:
        self._start()
        if not self._ready:
            return Reading(False, self._reason)
        return Reading(True, "", tuple(self._one(i, h) for i, h in enumerate(self._handles)))


class TelemetrySampler:
    """Samples in a background thread at most once a second; readers take the latest reading."""

    def __init__(self, source: NvmlTelemetry | Any, interval_s: float = 1.0, history: int = 600):
        self.source = source
        self.interval_s = max(1.0, interval_s)
        self.latest: Reading = Reading(False, "not sampled yet")
        self.history: list[Reading] = []
        self._limit = history
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)

    def start(self) -> TelemetrySampler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            reading = self.source.sample()
            self.latest = reading
            self.history = (self.history + [reading])[-self._limit:]
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
