"""Out of memory: recognising it (torch's own error and the cuDNN/cuBLAS RuntimeErrors that mean the
same), giving the memory back, and a test seam that raises it at a chosen point of a chosen step."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

import torch

# cuDNN and cuBLAS report a failed allocation as a plain RuntimeError with one of these in the text.
_OOM_MARKERS = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
                "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", "CUBLAS_STATUS_NOT_INITIALIZED")
PHASES = ("forward", "backward", "clip", "step", "eval")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _OOM_MARKERS)


def release_memory(device: torch.device) -> None:
    """Call outside the `except` block: the exception's traceback keeps the failed step's tensors alive."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class OomInjector:
    """Test seam: raise an out-of-memory error at chosen optimizer steps, at a chosen point of the step,
    when the micro-batch (or evaluation batch) is larger than `below`, on one rank or all. Set from
    GALAXY_TUI_INJECT_OOM, e.g. "steps=3 below=8", "steps=2 phase=backward rank=1",
    "steps=1 phase=step kind=cublas", "phase=eval below=16".

    phase: forward (before the forward pass), backward (after a synced forward, before backward: DDP has
    prepared its gradient reduction), clip (after unscale_), step (inside optimizer.step), eval.
    kind: oom (torch.cuda.OutOfMemoryError) or cublas (the RuntimeError cuBLAS raises)."""

    steps: set[int] = field(default_factory=set)
    below: int = 1 << 30
    phase: str = "forward"
    kind: str = "oom"
    rank: int | None = None   # the rank it strikes; None: every rank
    this_rank: int = 0

    @classmethod
    def from_environment(cls, rank: int = 0) -> OomInjector:
        spec = dict(part.split("=", 1) for part in os.environ.get("GALAXY_TUI_INJECT_OOM", "").split())
        injector = cls({int(s) for s in spec.get("steps", "").split(",") if s.strip()},
                       int(spec.get("below", 1 << 30)), spec.get("phase", "forward"), spec.get("kind", "oom"),
                       int(spec["rank"]) if "rank" in spec else None, rank)
        if injector.phase not in PHASES:
            raise ValueError(f"GALAXY_TUI_INJECT_OOM phase must be one of {PHASES}")
        return injector

    def check(self, phase: str, step: int, size: int) -> None:
        if phase != self.phase or size <= self.below:
            return
        if phase != "eval" and step not in self.steps:
            return
        if self.rank is not None and self.rank != self.this_rank:
            return
        where = f"{phase} of step {step}" if phase != "eval" else "evaluation"
        if self.kind == "cublas":
            raise RuntimeError(f"CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)` "
                               f"(injected in the {where}, size {size})")
        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected in the {where}, size {size})")
