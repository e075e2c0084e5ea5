"""What the probe measures with: a peak of memory over a stretch of work, and a state dict copied to the CPU (the
probe keeps the weights and the optimizer's state there while it tries sizes)."""

from __future__ import annotations

import os
import threading
import time

import psutil
import torch

from galaxy_tui.train.device import Placement


def cpu_copy(state: object) -> object:
    """A copy of a (nested) state dict with every tensor on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(cpu_copy(v) for v in state)
    return state


class PeakMemory:
    """Peak memory over a stretch of work: CUDA's own peak statistics, or on CPU the process RSS
    sampled every 2 ms in a thread (the OS keeps no resettable high-water mark)."""

    def __init__(self, placement: Placement):
        self.cuda = placement.device.type == "cuda"
        self.device = placement.device
        self._peak = 0
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        process = psutil.Process(os.getpid())
        self._peak = process.memory_info().rss
        self._running.set()

        def sample() -> None:
            while self._running.is_set():
                self._peak = max(self._peak, process.memory_info().rss)
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_reserved(self.device))
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return int(self._peak)
