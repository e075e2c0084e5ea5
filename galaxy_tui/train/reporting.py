"""The worker's voice: events and a status.json rewritten with a heartbeat. Rank 0 alone writes."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.events import EventWriter
from galaxy_tui.telemetry import GpuSample, NvmlTelemetry, for_run

HEARTBEAT_S = 2.0


class Reporter:
    def __init__(self, run_dir: Path, writes: bool):
        self.run_dir = run_dir
        self.writes = writes
        self._events = EventWriter(run_dir / "events.jsonl") if writes else None
        self._status: dict[str, Any] = read_json(run_dir / "status.json") or {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.write_error: str | None = None
        if writes:
            self._status.update(host=socket.gethostname())
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()

    def emit(self, kind: str, /, **fields: Any) -> None:
        if self._events is not None:
            try:
                self._events.emit(kind, **fields)
            except OSError as exc:  # the stream cannot grow (a full or read-only disk): the log still tells
                print(f"galaxy-tui worker: cannot append {kind!r} to {self._events.path}: {exc.strerror or exc}",
                      file=sys.stderr, flush=True)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._status.get(key, default)

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._status.update(fields)
        self._write()

    def _write(self) -> None:
        if not self.writes:
            return
        with self._lock:  # held across the write, so a heartbeat never lands after a newer state
            now = time.time()
            try:
                atomic_write_json(self.run_dir / "status.json", {**self._status, "heartbeat": now, "updated": now},
                                  in_place_fallback=True)
            except OSError as exc:  # a read-only or vanished run folder: say it once; readers derive the state
                if self.write_error is None:
                    self.write_error = f"cannot write {self.run_dir / 'status.json'}: {exc.strerror or exc}"
                    print(f"galaxy-tui worker: {self.write_error}", file=sys.stderr, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._write()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._events is not None:
            self._events.close()


class _LoggerThread:
    """A daemon thread running `_loop` until `stop()`, which returns once the loop wrote its last event,
    so the reporter may be closed right after."""

    def __init__(self, name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)


class GpuLogger(_LoggerThread):
    """Emits a `gpu` event per GPU of the run every few seconds (`index` is the run's CUDA device,
    `nvml_index` NVML's number for it), or once a plain `telemetry` event saying there is none.

    It also keeps the run's energy: NVML's energy counter where every GPU of the run has one, else
    the power readings integrated over time (sampled every second), else unknown, with the reason."""

    def __init__(self, reporter: Reporter, run_uuids: list[str], interval_s: float = 5.0,
                 telemetry: NvmlTelemetry | None = None, power_every_s: float = 1.0):
        super().__init__("gpu-logger")
        self.reporter = reporter
        self.run_uuids = run_uuids
        self.telemetry = telemetry or NvmlTelemetry()
        self.interval_s = interval_s
        self.power_every_s = min(power_every_s, interval_s)
        self._integrated_j: dict[int, float] = {}
        self._last_power: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _ours(self) -> list[GpuSample]:
        return [gpu for cuda, gpu in for_run(self.telemetry.sample().gpus, self.run_uuids) if cuda is not None]

    def _integrate(self, gpus: list[GpuSample], now: float) -> None:
        with self._lock:
            for gpu in gpus:
                if gpu.power_w is None:
                    continue
                if gpu.index in self._last_power:
                    then, power = self._last_power[gpu.index]
                    self._integrated_j[gpu.index] += (now - then) * (power + gpu.power_w) / 2
                else:
                    self._integrated_j[gpu.index] = 0.0  # from the first reading on, energy is counted
                self._last_power[gpu.index] = (now, gpu.power_w)

    def energy(self) -> tuple[float | None, str]:
        """(joules so far, how they were measured): compare two readings to get the energy between them."""
        if not self.telemetry.available:
            return None, self.telemetry.sample().reason or "no NVIDIA GPU"
        gpus = self._ours()
        if not gpus:
            return None, "the run's GPUs are not visible to NVML"
        if all(gpu.energy_j is not None for gpu in gpus):
            return sum(gpu.energy_j for gpu in gpus), "NVML energy counter"  # type: ignore[misc]
        with self._lock:
            if all(gpu.index in self._integrated_j for gpu in gpus):
                return sum(self._integrated_j[gpu.index] for gpu in gpus), "power samples integrated each second"
        if any(gpu.power_w is None for gpu in gpus):
            return None, "this GPU reports neither an energy counter nor power draw"
        return None, "not enough power samples yet"

    def start(self) -> GpuLogger:
        if not self.telemetry.available:
            self.reporter.emit("telemetry", available=False, reason=self.telemetry.sample().reason)
        else:
            self._integrate(self._ours(), time.monotonic())  # energy is known from the moment start() returns
            self._thread.start()
        return self

    def _loop(self) -> None:
        last_event = 0.0
        while True:
            now = time.monotonic()
            paired = for_run(self.telemetry.sample().gpus, self.run_uuids)
            self._integrate([gpu for cuda, gpu in paired if cuda is not None], now)
            if now - last_event >= self.interval_s - 1e-6:
                last_event = now
                for cuda_index, gpu in paired:
                    if cuda_index is not None:
                        self.reporter.emit("gpu", **{**gpu.event_fields(), "index": cuda_index,
                                                     "nvml_index": gpu.index})
            if self._stop.wait(self.power_every_s):
                return



class HostLogger(_LoggerThread):
    """Emits a `host` event with the worker's own CPU use (% of one core) and resident memory every few
    seconds, so the Monitor can draw their history for any run, also after the app was reopened."""

    def __init__(self, reporter: Reporter, interval_s: float = 2.0):
        super().__init__("host-logger")
        self.reporter = reporter
        self.interval_s = interval_s
        self._process = psutil.Process(os.getpid())

    def start(self) -> HostLogger:
        self._process.cpu_percent(None)  # the first reading only starts the measurement
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                cpu, rss = self._process.cpu_percent(None), self._process.memory_info().rss
            except psutil.Error:
                return
            self.reporter.emit("host", cpu_percent=round(cpu, 1), rss_bytes=int(rss))

