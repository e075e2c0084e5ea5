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


def native_bf16(device: torch.device) -> bool:
    """bf16 with tensor cores (Ampere, compute capability 8.0, and later). torch's is_bf16_supported()
    also counts emulation, which on Turing (T4, RTX 20xx) runs bf16 convolutions without tensor cores."""
    if torch.version.hip:
        return torch.cuda.is_bf16_supported()
    return torch.cuda.get_device_capability(device) >= (8, 0)


def choose_placement(precision: str, channels_last: bool, tf32: bool, local_rank: int = 0) -> Placement:
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        # cuDNN's TF32 switch defaults to on: set both, so tf32 = false really means fp32 convolutions.
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True  # input shapes are fixed for the whole run
        dtype = {"auto": torch.bfloat16 if native_bf16(device) else torch.float16, "bf16": torch.bfloat16,
                 "fp16": torch.float16, "fp32": None}[precision]
        return Placement(device, dtype, dtype is torch.float16, channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None  # fp16 autocast on CPU is not worth it
    return Placement(torch.device("cpu"), dtype, False, channels_last)


def rng_states(device: torch.device) -> dict[str, torch.Tensor | None]:
    """The global random states a run depends on: CPU, and the CUDA device's where it trains."""
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch_rng"])
    if device.type == "cuda" and states.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(states["cuda_rng"], device)


def memory_budget(placement: Placement, margin: float) -> int:
    """Bytes the probe may let one step peak at: free VRAM, or on CPU this process's RAM plus what is free."""
    if placement.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(placement.device)
        return int((free + torch.cuda.memory_reserved(placement.device)) * (1 - margin))
    available = psutil.virtual_memory().available + psutil.Process(os.getpid()).memory_info().rss
    return int(available * (1 - margin))


def make_scaler(placement: Placement, state: dict | None = None) -> torch.amp.GradScaler:
    """A GradScaler for this placement (enabled only for fp16 on CUDA), loaded from `state` when that
    holds anything: a disabled scaler (CPU, bf16) saves an empty state that an enabled one refuses."""
    scaler = torch.amp.GradScaler(placement.device.type, enabled=placement.use_scaler)
    if state and placement.use_scaler:
        scaler.load_state_dict(state)
    return scaler


def run_gpu_uuids(placement: Placement, local_world: int) -> list[str]:
    """The UUIDs of this node's CUDA devices the run uses (cuda:0 .. local_world-1), in CUDA's order."""
    if placement.device.type != "cuda":
        return []
    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(local_world)]
