"""The collective's bandwidth: `world` processes (one per GPU with NCCL, or CPU processes with gloo) all-reduce a
buffer a few times; the bus bandwidth is what NCCL's own tests report (2 (n - 1) / n of the buffer per
all-reduce, over the time)."""

from __future__ import annotations

import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

MEGABYTES, ROUNDS = 64, 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rank(rank: int, world: int, backend: str, port: int, results: mp.SimpleQueue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(device)
        buffer = torch.ones(MEGABYTES * 2**20 // 4, device=device)
        dist.all_reduce(buffer)  # warm-up: connections and buffers
        if backend == "nccl":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(ROUNDS):
            dist.all_reduce(buffer)
        if backend == "nccl":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        if rank == 0:
            moved = 2 * (world - 1) / world * buffer.numel() * 4 * ROUNDS
            expected = torch.full((4,), float(world ** (ROUNDS + 1)))  # each all-reduce multiplies by `world`
            results.put({"backend": backend, "ranks": world, "megabytes": MEGABYTES, "rounds": ROUNDS,
                         "bus_gb_per_s": round(moved / seconds / 1e9, 2),
                         "sum_ok": bool(torch.allclose(buffer[:4].cpu(), expected))})
    finally:
        dist.destroy_process_group()


def allreduce_bandwidth(world: int, backend: str) -> dict[str, object]:
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(_rank, args=(world, backend, _free_port(), results), nprocs=world, start_method="spawn")
    return results.get()
