"""`galaxy-tui export RUN --format torchscript|onnx`: the run's model as one self-contained file (it
normalises its input and returns probabilities or fractions) plus a JSON of what it expects and returns,
checked against the PyTorch model on real galaxies."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_tui.atomic import atomic_write_bytes
from galaxy_tui.data.images import ImageUnreadable, resize_image
from galaxy_tui.errors import GalaxyError
from galaxy_tui.inference.predicting import Item
from galaxy_tui.inference.servable import LoadedRun

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
PARITY_LIMIT = 1e-4


@dataclass
class Parity:
    galaxies: int
    max_difference: float | None  # None: not checked (the runtime is not installed)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.max_difference is not None and self.max_difference <= PARITY_LIMIT


def _save_torchscript(loaded: LoadedRun, example: torch.Tensor, target: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice: the file is what users ask for
        traced = torch.jit.trace(loaded.servable, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    atomic_write_bytes(target, buffer.getvalue())


def _save_onnx(loaded: LoadedRun, example: torch.Tensor, target: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise GalaxyError(f"--format onnx needs onnx and onnxscript ({exc}): pip install 'galaxy-tui[export]'.") \
            from None
    building = target.with_name(target.name + ".building")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(loaded.servable, (example,), str(building), input_names=["images"],
                          output_names=["outputs"], dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                          dynamo=True, external_data=False)
    building.replace(target)


def _run_exported(kind: str, path: Path, images: torch.Tensor) -> np.ndarray | None:
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notice
            return torch.jit.load(str(path), map_location="cpu")(images).detach().numpy()
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})[0]


def export_run(loaded: LoadedRun, kind: str, target: Path, check: list[Item]) -> tuple[Path, Parity]:
    """Write the model (traced on the CPU) and TARGET.json; compare its outputs with the PyTorch model's on
    the `check` galaxies."""
    if kind not in FORMATS:
        raise GalaxyError(f"--format {kind!r}: choose one of {', '.join(FORMATS)}.")
    loaded.servable.to("cpu")
    loaded.device = torch.device("cpu")
    prepared = []
    for item in check:
        try:
            prepared.append(resize_image(item.read(), loaded.image_size, loaded.crop))
        except (ImageUnreadable, OSError, ValueError):
            continue  # a galaxy that cannot be read is left out of the check
    if not prepared:
        raise GalaxyError("none of the galaxies to check the export on could be read.")
    example = torch.from_numpy(np.stack(prepared)).permute(0, 3, 1, 2).float().contiguous()
    with torch.no_grad():
        reference = loaded.servable(example).numpy()
    (_save_torchscript if kind == "torchscript" else _save_onnx)(loaded, example, target)
    outputs = _run_exported(kind, target, example)
    parity = Parity(len(prepared), None, "onnxruntime is not installed: pip install 'galaxy-tui[export]'") \
        if outputs is None else Parity(len(prepared), float(np.abs(outputs - reference).max()))
    atomic_write_bytes(target.with_suffix(target.suffix + ".json"), json.dumps(
        _description(loaded, kind, target, parity), indent=1).encode())
    return target, parity


def _description(loaded: LoadedRun, kind: str, target: Path, parity: Parity) -> dict[str, Any]:
    return {"run": loaded.run_id, "format": kind, "file": target.name, "task": loaded.task,
            "outputs": loaded.outputs, "preprocessing": loaded.preprocessing,
            "temperature": loaded.temperature,
            "parity": {"galaxies": parity.galaxies, "max_abs_difference": parity.max_difference,
                       "limit": PARITY_LIMIT, "note": parity.note},
            "metrics": {k: loaded.metrics.get(k) for k in ("split", "accuracy", "macro_f1", "rmse", "mae")
                        if loaded.metrics.get(k) is not None}}
