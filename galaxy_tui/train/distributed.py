"""Several processes, one run: the process group, every collective the worker makes, and how ranks
learn that a peer died.

Each collective goes through `Collectives`, which checks the tensor's device against the devices the
chosen backend serves before sending it (NCCL serves CUDA tensors only, gloo CPU tensors). The worker's
agreements (stop, micro-batch, probe outcome, validation figures) are small CPU tensors, so on a GPU
box the group is "cpu:gloo,cuda:nccl": NCCL for DDP's gradient buckets, gloo for the rest. The check
also runs with one process, so a wrong backend is caught on any machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.supervisor import images_ready_path, rank_failure_path, read_rank_failures

# Collectives after the data is prepared are short; a rank that waits this long is stuck.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
_PEER_POLL_S = 1.0


def backend_for(cuda: bool) -> str:
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def backend_devices(backend: str) -> dict[str, str]:
    """Which backend serves each device type: "cpu:gloo,cuda:nccl" -> {cpu: gloo, cuda: nccl}."""
    if ":" in backend:
        return dict(part.split(":", 1) for part in backend.split(","))  # type: ignore[misc]
    return {"nccl": {"cuda": "nccl"}, "gloo": {"cpu": "gloo"}, "mpi": {"cpu": "mpi", "cuda": "mpi"}}.get(
        backend, {"cpu": backend})


@dataclass(frozen=True)
class Topology:
    rank: int
    world: int
    local_rank: int

    @classmethod
    def from_environment(cls) -> Topology:
        """torchrun's variables; read before the process group exists (data is prepared first)."""
        return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                   int(os.environ.get("LOCAL_RANK", "0")))


class Collectives:
    def __init__(self, topology: Topology, backend: str):
        self.topology = topology
        self.backend = backend
        self._serves = backend_devices(backend)

    @property
    def distributed(self) -> bool:
        return self.topology.world > 1

    def start(self) -> None:
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(self.backend, timeout=COLLECTIVE_TIMEOUT)

    def _checked(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type not in self._serves:
            raise RuntimeError(f"a collective on a {tensor.device.type} tensor, but the process group "
                               f"backend {self.backend!r} serves only {sorted(self._serves)}")
        return tensor

    def _reduce(self, values: list[float] | list[int], op: dist.ReduceOp, dtype: torch.dtype) -> list:
        tensor = self._checked(torch.tensor(values, dtype=dtype))
        if self.distributed:
            dist.all_reduce(tensor, op=op)
        return tensor.tolist()

    def min_int(self, value: int) -> int:
        return int(self._reduce([int(value)], dist.ReduceOp.MIN, torch.int64)[0])

    def max_ints(self, values: list[int]) -> list[int]:
        return [int(v) for v in self._reduce([int(v) for v in values], dist.ReduceOp.MAX, torch.int64)]

    def any(self, flag: bool) -> bool:
        return bool(self.max_ints([1 if flag else 0])[0])

    def mean(self, values: list[float]) -> list[float]:
        total = self._reduce([float(v) for v in values], dist.ReduceOp.SUM, torch.float64)
        return [float(v) / self.topology.world for v in total]

    def from_rank0(self, values: list[float]) -> list[float]:
        """Rank 0's numbers on every rank: decisions made once (validation metric, early stop, LR)."""
        tensor = self._checked(torch.tensor(values, dtype=torch.float64))
        if self.distributed:
            dist.broadcast(tensor, src=0)
        return [float(v) for v in tensor.tolist()]

    def barrier(self) -> None:
        """Every rank reaches this point before any goes on (an all-reduce the CPU backend serves)."""
        self._reduce([0], dist.ReduceOp.SUM, torch.int64)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


class PeerFailures:
    """A rank that fails writes ranks/failure-rank<N>.json. Under NCCL the other ranks are stuck in a
    collective that no signal handler can interrupt (Python runs handlers only between bytecodes), so a
    thread watches for a peer's file and ends this rank at once with the peer's message."""

    def __init__(self, run_dir: Path, topology: Topology):
        self.run_dir = run_dir
        self.topology = topology
        self._stop = threading.Event()

    def report(self, message: str) -> None:
        path = rank_failure_path(self.run_dir, self.topology.rank)
        path.parent.mkdir(exist_ok=True)
        atomic_write_json(path, {"rank": self.topology.rank, "message": message, "t": time.time()})

    def images_ready(self) -> None:
        """Rank 0 has prepared the image cache."""
        atomic_write_json(images_ready_path(self.run_dir), {"t": time.time()})

    def wait_for_images(self, check_stop: Callable[[], None]) -> None:
        while not images_ready_path(self.run_dir).exists():
            check_stop()
            time.sleep(0.2)

    def first(self) -> str | None:
        """The earliest failure another rank reported, as a message for the user."""
        for record in read_rank_failures(self.run_dir):
            if record["rank"] != self.topology.rank:
                return f"rank {record['rank']}: {record['message']}"
        return None

    def watch(self, on_failure: Callable[[str], None]) -> None:
        if self.topology.world <= 1:
            return

        def loop() -> None:
            while not self._stop.wait(_PEER_POLL_S):
                message = self.first()
                if message:
                    on_failure(message)
                    return

        threading.Thread(target=loop, name="peer-failures", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
