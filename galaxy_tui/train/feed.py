"""Keeping the device fed: the next optimizer steps' images are read from the memory-mapped cache by a
background thread while the device computes the current one.

Each step's rows are read in file order straight into one buffer, by two readers at once (NumPy's copy
releases the GIL). On a GPU the buffer is pinned memory, fresh from torch's caching host allocator, which
knows when an asynchronous copy out of it has finished; on the CPU a small ring of buffers is reused
(a fresh 40 MB buffer per step costs more in page faults than the read). The thread only reads bytes:
the order of the steps, their rows and every random draw (augmentation) stay in the main thread, so
training with the feeder is exactly training without it, and a resume replays the same data.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_DONE = object()


def _ring_size(depth: int) -> int:
    """The consumer holds one batch, the queue `depth`, the reader fills one: then a buffer comes round."""
    return depth + 2


def read_rows(images: np.ndarray, rows: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) for these rows of the (N, H, W, 3) cache, copied once, in the rows' order.
    Callers pass rows sorted by position (the batch's order), so the reads also run in file order."""
    if out is None:
        out = torch.empty((len(rows), *images.shape[1:]), dtype=torch.uint8)
    np.take(images, rows, axis=0, out=out.numpy())
    return out.permute(0, 3, 1, 2)


class Inline:
    """The feeder's interface without a thread: each step's batch is read when the step asks for it."""

    def __init__(self, images: np.ndarray, steps: Sequence[np.ndarray]):
        self.images = images
        self.steps = steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (read_rows(self.images, rows) for rows in self.steps)

    def close(self) -> None:
        pass


class Prefetcher:
    """Yields the uint8 batch of each step in `steps` (arrays of cache rows), read `depth` steps ahead."""

    def __init__(self, images: np.ndarray, steps: Sequence[np.ndarray], pin: bool, depth: int = 2,
                 readers: int = 2, ring: list[torch.Tensor] | None = None):
        """`ring`: host buffers to reuse, kept by the caller from one epoch to the next."""
        self.images = images
        self.steps = steps
        self.pin = pin
        self.readers = readers
        self._ring: list[torch.Tensor] = ring if ring is not None else []
        self._ring_size = _ring_size(depth)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_ahead, name="prefetch", daemon=True)
        self._thread.start()

    @staticmethod
    def warm(images: np.ndarray, batch: int, pin: bool, ring: list[torch.Tensor], depth: int = 2) -> None:
        """Fault in the host memory the feeder will use, once, before training starts: otherwise the
        first steps wait while the kernel zero-fills fresh pages or CUDA pins them (measured here: 45-70 ms
        more for the first reads into fresh 38 MB buffers)."""
        shape, count = (batch, *images.shape[1:]), _ring_size(depth)
        if pin:  # freed at once: torch's caching host allocator keeps the pinned blocks for the feeder
            blocks = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(count)]
            del blocks
        else:
            ring[:] = [torch.zeros(shape, dtype=torch.uint8) for _ in range(count)]

    def _buffer(self, step: int, count: int) -> torch.Tensor:
        shape = (count, *self.images.shape[1:])
        if self.pin:
            return torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        slot = step % self._ring_size
        if slot == len(self._ring):
            self._ring.append(torch.empty((max(len(r) for r in self.steps), *shape[1:]), dtype=torch.uint8))
        if len(self._ring[slot]) < count or self._ring[slot].shape[1:] != shape[1:]:
            self._ring[slot] = torch.empty(shape, dtype=torch.uint8)
        return self._ring[slot][:count]

    def _read(self, pool: ThreadPoolExecutor, rows: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        bounds = np.linspace(0, len(rows), self.readers + 1).astype(int)
        parts = [pool.submit(read_rows, self.images, rows[a:b], out[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        for part in parts:
            part.result()
        return out.permute(0, 3, 1, 2)

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
            with ThreadPoolExecutor(max_workers=self.readers, thread_name_prefix="prefetch-read") as pool:
                for step, rows in enumerate(self.steps):
                    if not self._put(self._read(pool, rows, self._buffer(step, len(rows)))):
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
