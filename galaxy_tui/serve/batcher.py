"""Requests that arrive together share one forward pass: each request's images wait a few milliseconds
(or until the batch is full) for others, then one batch goes to the device on the model's own thread and
each request gets its rows back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Waiting:
    images: np.ndarray
    answer: asyncio.Future[tuple[np.ndarray, ...]]


class Batcher:
    """Runs `classify` (uint8 N x H x W x 3 -> arrays of N rows: the outputs, and whatever else is read per image)
    over batches gathered from concurrent callers; each caller gets its own rows of each array."""

    def __init__(self, classify: Callable[[np.ndarray], tuple[np.ndarray, ...]], max_batch: int = 32,
                 max_wait_s: float = 0.004):
        self.classify, self.max_batch, self.max_wait_s = classify, max_batch, max_wait_s
        self.batches = 0
        self.images = 0
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="galaxy-model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._loop_task = asyncio.create_task(self._serve_batches())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        self._model_thread.shutdown(wait=True)

    async def submit(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._queue is None:
            raise RuntimeError("the batcher has not started")
        answer: asyncio.Future[tuple[np.ndarray, ...]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(images, answer))
        return await answer

    async def _gather(self) -> list[_Waiting]:
        assert self._queue is not None
        waiting = [await self._queue.get()]
        count = len(waiting[0].images)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while count < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            waiting.append(item)
            count += len(item.images)
        return waiting

    async def _serve_batches(self) -> None:
        while True:
            waiting = [item for item in await self._gather() if not item.answer.done()]  # done: the caller left
            if not waiting:
                continue
            batch = np.concatenate([item.images for item in waiting])
            try:
                outputs = await asyncio.get_running_loop().run_in_executor(self._model_thread, self.classify, batch)
            except Exception as exc:  # every caller of this batch hears why; the server goes on
                for item in waiting:
                    if not item.answer.done():
                        item.answer.set_exception(exc)
                continue
            self.batches += 1
            self.images += len(batch)
            start = 0
            for item in waiting:
                if not item.answer.done():
                    item.answer.set_result(tuple(rows[start:start + len(item.images)] for rows in outputs))
                start += len(item.images)
