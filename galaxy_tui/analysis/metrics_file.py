"""A run's results/metrics.json, read defensively: a value of the wrong type (a hand edit, a damaged copy) is left
out and said, rather than breaking every view that formats it. Torch-free, stdlib only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from galaxy_tui.atomic import read_json

_NUMBER = (int, float)
_EXPECTED: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(("loss", "accuracy", "macro_f1", "rmse", "mae", "best_val_acc", "best_val_rmse", "best_val_mae",
                     "threshold", "energy_j", "images_per_j", "seconds"), _NUMBER),
    **dict.fromkeys(("best_epoch", "epochs_trained", "micro_batch", "parameters", "galaxies"), int),
    **dict.fromkeys(("split", "model", "energy_note", "task", "kind", "loss_function"), str),
    **dict.fromkeys(("classes", "confusion", "thresholds", "outputs", "questions"), list),
    **dict.fromkeys(("per_class", "confidence", "calibration", "tta", "baseline", "ensemble", "boosted", "derived"),
                    dict),
}
_FIGURES_IN = {"calibration": ("temperature", "val_ece_before", "val_ece_after", "ece_before", "ece_after"),
               "tta": ("views", "accuracy", "rmse")}


def _fits(value: Any, kind: type | tuple[type, ...]) -> bool:
    if value is None:
        return True  # JSON's null: a figure that was not measured (NaN, no GPU)
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, kind)


def read_metrics(run_dir: Path, problems: list[str] | None = None) -> dict[str, Any] | None:
    """The run's metrics without the values of a wrong type; each one left out is described in `problems`.
    None when there is no readable metrics.json."""
    path = run_dir / "results" / "metrics.json"
    metrics = read_json(path)
    if metrics is None:
        return None
    said = problems if problems is not None else []
    for key, kind in _EXPECTED.items():
        if key in metrics and not _fits(metrics[key], kind):
            said.append(_damaged(path, key, metrics.pop(key)))
    classes = metrics.get("classes")
    if classes is not None and not all(isinstance(name, str) for name in classes):
        said.append(_damaged(path, "classes", metrics.pop("classes")))
    for table, keys in _FIGURES_IN.items():
        figures = metrics.get(table) or {}
        for key in [k for k in keys if k in figures and not _fits(figures[k], _NUMBER)]:
            said.append(_damaged(path, f"{table}.{key}", figures.pop(key)))
    return metrics


def _damaged(path: Path, key: str, value: Any) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"{path}: {key} = {shown} is damaged (a {type(value).__name__}); that figure is left out"
