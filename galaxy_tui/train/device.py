"""Device, precision and memory: where the run executes and what it may spend."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import psutil
import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype | None   # autocast dtype, None for fp32
    use_scaler: bool            # fp16 on CUDA needs a GradScaler
    channels_last: bool

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def choose_placement(precision: str, channels_last: bool, tf32: bool, local_rank: int = 0) -> Placement:
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        if tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        bf16 = torch.cuda.is_bf16_supported()
        dtype = {"auto": torch.bfloat16 if bf16 else torch.float16, "bf16": torch.bfloat16,
                 "fp16": torch.float16, "fp32": None}[precision]
        return Placement(device, dtype, dtype is torch.float16, channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None  # fp16 autocast on CPU is not worth it
    return Placement(torch.device("cpu"), dtype, False, channels_last)


def memory_budget(placement: Placement, margin: float) -> int:
    """Bytes the probe may let one step peak at: free VRAM, or on CPU this process's RAM plus what is free."""
    if placement.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(placement.device)
        return int((free + torch.cuda.memory_reserved(placement.device)) * (1 - margin))
    available = psutil.virtual_memory().available + psutil.Process(os.getpid()).memory_info().rss
    return int(available * (1 - margin))
