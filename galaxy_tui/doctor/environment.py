"""The first two checks: what is installed (Python, torch, CUDA, cuDNN, the driver, NVML, the visible devices,
galaxy-tui), and whether every CUDA device torch sees is exactly one device NVML sees, matched by UUID. NVML counts
GPUs in PCI order; CUDA orders them fastest first and CUDA_VISIBLE_DEVICES renumbers them, so telemetry read by
index would describe another GPU."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass

import torch

from galaxy_tui.doctor.report import FAIL, NEEDS_GPU, PASS, SKIP, Check
from galaxy_tui.telemetry import GpuSample, NvmlTelemetry, Reading, same_gpu
from galaxy_tui.train.manifest import driver_version, git_output


@dataclass(frozen=True)
class CudaDevice:
    index: int
    name: str
    capability: tuple[int, int]
    memory_bytes: int
    uuid: str


def cuda_devices() -> list[CudaDevice]:
    """What torch sees, in CUDA's order (after CUDA_VISIBLE_DEVICES)."""
    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append(CudaDevice(index, props.name, (props.major, props.minor), int(props.total_memory),
                                str(props.uuid)))
    return found


def environment(nvml: Reading) -> Check:
    commit = git_output("rev-parse", "--short=10", "HEAD")
    figures = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "galaxy_tui": importlib.metadata.version("galaxy-tui"), "commit": commit.strip() if commit else None,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": driver_version(), "nvml": "available" if nvml.available else nvml.reason,
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_available": torch.cuda.is_available(), "cpu_threads": torch.get_num_threads(),
    }
    built = f"torch {torch.__version__}" + (f" built for CUDA {torch.version.cuda}" if torch.version.cuda
                                            else " (a CPU build)")
    return Check("environment", PASS, f"{built}; {'CUDA available' if torch.cuda.is_available() else 'no CUDA GPU'}",
                 figures)


def match_devices(cuda: list[CudaDevice], nvml: list[GpuSample]) -> tuple[list[dict[str, object]], list[str]]:
    """Each CUDA device with the NVML device of its UUID, and every problem: a CUDA device no NVML device (or
    several) answers to, or one NVML device claimed by two CUDA devices."""
    rows, problems, claimed = [], [], {}
    for device in cuda:
        matches = [gpu for gpu in nvml if same_gpu(gpu.uuid, device.uuid)]
        mig = " MIG " in f" {device.name} " or device.uuid.upper().startswith("MIG-")
        rows.append({"cuda": device.index, "name": device.name, "capability": f"{device.capability[0]}."
                     f"{device.capability[1]}", "memory_gib": round(device.memory_bytes / 2**30, 2),
                     "uuid": device.uuid, "nvml": [gpu.index for gpu in matches], "mig": mig})
        if mig and not matches:
            continue  # a MIG slice has its own UUID; NVML's device list holds the whole GPUs it is cut from
        if len(matches) != 1:
            problems.append(f"cuda:{device.index} ({device.uuid}) matches {len(matches)} NVML devices")
        for gpu in matches:
            if gpu.index in claimed:
                problems.append(f"NVML GPU {gpu.index} answers to cuda:{claimed[gpu.index]} and cuda:{device.index}")
            claimed[gpu.index] = device.index
    return rows, problems


def devices(cuda: list[CudaDevice], nvml: Reading) -> Check:
    if not cuda:
        if nvml.available:
            return Check("devices", FAIL, f"NVML sees {len(nvml.gpus)} GPU(s) but torch sees none: a CPU build of "
                                          f"torch, or CUDA_VISIBLE_DEVICES hides them",
                         {"nvml_gpus": [gpu.name for gpu in nvml.gpus],
                          "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")})
        return Check("devices", SKIP, NEEDS_GPU)
    if not nvml.available:
        return Check("devices", FAIL, f"torch sees {len(cuda)} CUDA device(s) but NVML does not ({nvml.reason}): "
                                      f"no power, memory or utilisation can be shown",
                     {"cuda": [device.name for device in cuda]})
    rows, problems = match_devices(cuda, list(nvml.gpus))
    figures = {"devices": rows, "nvml_count": len(nvml.gpus)}
    if problems:
        return Check("devices", FAIL, "; ".join(problems) + ": telemetry would describe the wrong GPU", figures)
    renumbered = [f"cuda:{row['cuda']} is NVML GPU {row['nvml'][0]}" for row in rows  # type: ignore[index]
                  if row["nvml"] and row["nvml"] != [row["cuda"]]]
    migs = sum(bool(row["mig"]) for row in rows)
    return Check("devices", PASS, f"{len(cuda)} CUDA device(s), each one NVML device by UUID"
                 + (f" ({'; '.join(renumbered)}: CUDA_VISIBLE_DEVICES renumbers, matched by UUID)" if renumbered
                    else "") + (f"; {migs} MIG slice(s)" if migs else ""), figures)


def nvml_reading() -> Reading:
    return NvmlTelemetry().sample()
