"""Keeping the device fed: the next optimizer steps' images are read from the memory-mapped cache by a
background thread while the device computes the current one.

Each step's rows are read in file order straight into one buffer (pinned memory when the device is a
GPU, so the host-to-device copy can overlap compute). The thread only reads bytes: the order of the
steps, their rows and every random draw (augmentation) stay in the main thread, so training with the
feeder is exactly training without it, and a resume replays the same data.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch

_DONE = object()


def read_rows(images: np.ndarray, rows: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) for these rows of the (N, H, W, 3) cache, copied once, in the rows' order.
    Callers pass rows sorted by position (the batch's order), so the reads also run in file order."""
    if out is None:
        out = torch.empty((len(rows), *images.shape[1:]), dtype=torch.uint8)
    np.take(images, rows, axis=0, out=out.numpy())
    return out.permute(0, 3, 1, 2)


class Prefetcher:
    """Yields the uint8 batch of each step in `steps` (arrays of cache rows), read `depth` steps ahead."""

    def __init__(self, images: np.ndarray, steps: Sequence[np.ndarray], pin: bool, depth: int = 2):
        self.images = images
        self.steps = steps
        self.pin = pin
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_ahead, name="prefetch", daemon=True)
        self._thread.start()

    def _buffer(self, count: int) -> torch.Tensor:
        buffer = torch.empty((count, *self.images.shape[1:]), dtype=torch.uint8)
        return buffer.pin_memory() if self.pin else buffer

    def _put(self, item: object) -> bool:
        """Hand one item over, waiting for room; False once the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_ahead(self) -> None:
        try:
            for rows in self.steps:
                if not self._put(read_rows(self.images, rows, self._buffer(len(rows)))):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead (a stop or an error ended the epoch early)."""
        self._stop.set()
        self._thread.join(timeout=5)
