"""What a run's network outputs mean once predicted, told by its task: the head that turns logits into outputs, how
far the 8 test-time views spread, the columns of a predictions CSV, the JSON `serve` answers with and the table
`predict` prints. A loaded run carries one of these; a third task adds one class here."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from rich.table import Table

from galaxy_tui.analysis.calibration import scaled
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS, TaskKind
from galaxy_tui.train.tasks import VoteFractionTask


def _rounded(names: list[str], values: np.ndarray) -> dict[str, float]:
    return {name: round(float(value), 5) for name, value in zip(names, values)}


class TaskOutputs(Protocol):
    kind: TaskKind

    def head(self, logits: torch.Tensor) -> torch.Tensor: ...
    def tta_spread(self, views: torch.Tensor, mean: torch.Tensor) -> torch.Tensor: ...
    def add_columns(self, frame: pd.DataFrame, names: list[str], outputs: np.ndarray,
                    temperature: float | None, unlike: np.ndarray | None) -> None: ...
    def answers(self, files: list[str], names: list[str], outputs: np.ndarray,
                temperature: float | None, unlike: np.ndarray | None) -> list[dict[str, Any]]: ...
    def summary(self, names: list[str], frame: pd.DataFrame) -> Table | None: ...


class ClassOutputs:
    """Class probabilities (softmax), with the calibrated ones where evaluation fitted a temperature — but not for
    an image unlike the training galaxies (`unlike`): a temperature fitted on galaxies like them says nothing
    about it."""
    kind = CLASSIFICATION

    def head(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, 1)

    def tta_spread(self, views: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """How much the chosen class's probability moves with the view."""
        chosen = mean.argmax(1)
        return views[:, torch.arange(len(chosen)), chosen].std(0)

    def add_columns(self, frame: pd.DataFrame, names: list[str], outputs: np.ndarray,
                    temperature: float | None, unlike: np.ndarray | None) -> None:
        frame["predicted"] = np.array(names)[outputs.argmax(1)] if len(outputs) else []
        frame["confidence"] = outputs.max(1).round(5) if len(outputs) else []
        for i, name in enumerate(names):
            frame[f"p_{name}"] = outputs[:, i].round(5) if len(outputs) else []
        if temperature is not None and len(outputs):
            calibrated = scaled(outputs.astype(np.float64), temperature)
            if unlike is not None:
                calibrated[unlike] = np.nan
            frame["calibrated_confidence"] = calibrated.max(1).round(5)
            for i, name in enumerate(names):
                frame[f"pcal_{name}"] = calibrated[:, i].round(5)

    def answers(self, files: list[str], names: list[str], outputs: np.ndarray,
                temperature: float | None, unlike: np.ndarray | None) -> list[dict[str, Any]]:
        calibrated = scaled(outputs.astype(np.float64), temperature) if temperature is not None else None
        results = []
        for i, (file, row) in enumerate(zip(files, outputs)):
            best = int(row.argmax())
            result: dict[str, Any] = {"file": file, "predicted": names[best], "confidence": round(float(row[best]), 5),
                                      "probabilities": _rounded(names, row)}
            if calibrated is not None and not (unlike is not None and unlike[i]):
                result["calibrated_probabilities"] = _rounded(names, calibrated[i])
            results.append(result)
        return results

    def summary(self, names: list[str], frame: pd.DataFrame) -> Table | None:
        if not len(frame):
            return None
        table = Table(title="predicted classes")
        for column in ("class", "galaxies", "share", "median confidence"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name in names:
            mine = frame[frame["predicted"] == name]
            table.add_row(name, str(len(mine)), f"{len(mine) / len(frame):.1%}",
                          f"{mine['confidence'].median():.3f}" if len(mine) else "-")
        return table


class FractionOutputs:
    """Vote fractions, one per answer, decoded per question as training's loss reads them."""
    kind = VOTE_FRACTIONS

    def __init__(self, task: VoteFractionTask):
        self.task = task

    def head(self, logits: torch.Tensor) -> torch.Tensor:
        return self.task.predictions(logits)

    def tta_spread(self, views: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return views.std(0).mean(1)

    def add_columns(self, frame: pd.DataFrame, names: list[str], outputs: np.ndarray,
                    temperature: float | None, unlike: np.ndarray | None) -> None:
        for i, name in enumerate(names):
            frame[f"pred_{name}"] = outputs[:, i].round(5) if len(outputs) else []

    def answers(self, files: list[str], names: list[str], outputs: np.ndarray,
                temperature: float | None, unlike: np.ndarray | None) -> list[dict[str, Any]]:
        return [{"file": file, "fractions": _rounded(names, row)} for file, row in zip(files, outputs)]

    def summary(self, names: list[str], frame: pd.DataFrame) -> Table | None:
        return None
