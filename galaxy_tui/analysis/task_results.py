"""What a run's results say, told by its task: the headline figures, the table per output (class or question), the
confusion matrix (the model's own, or the labelling rule's applied to predicted answers) and the compact figure the
Compare table shows. The Results pane and `galaxy-tui show` both read results through `results_of(metrics)`, so a
third task adds one class here and nothing branches on a task's name elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from rich.table import Table
from rich.text import Text

from galaxy_tui.analysis.calibration_figures import per_class_table
from galaxy_tui.analysis.derived_results import derived_from, is_derived
from galaxy_tui.analysis.fraction_figures import headline, question_table
from galaxy_tui.task_kinds import CLASSIFICATION, VOTE_FRACTIONS, TaskKind, kind_of_metrics


def figure(value: Any, digits: int = 4, missing: str = "n/a") -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else missing


def _at_epoch(epoch: Any) -> str:
    return f" (epoch {epoch})" if isinstance(epoch, int) else ""


@dataclass(frozen=True)
class Matrix:
    classes: list[str]
    counts: list[list[int]]
    title: str


class TaskResults(Protocol):
    kind: TaskKind
    answers_tab: str  # the Results pane's third tab
    no_matrix: str    # said where a confusion matrix would be, when there is none

    def headline_fields(self, metrics: dict[str, Any]) -> list[Text]: ...
    def test_figure(self, metrics: dict[str, Any]) -> str: ...
    def outputs_table(self, metrics: dict[str, Any]) -> Table | None: ...
    def matrix(self, metrics: dict[str, Any]) -> Matrix | None: ...


class ClassificationResults:
    kind = CLASSIFICATION
    answers_tab = "Calibration"
    no_matrix = ""

    def headline_fields(self, metrics: dict[str, Any]) -> list[Text]:
        split = str(metrics.get("split", "test"))
        accuracy = Text(f"{split} accuracy ")
        accuracy.append(figure(metrics.get("accuracy")), style="bold green")
        tta = (metrics.get("tta") or {}).get("accuracy")
        best = f"val accuracy {figure(metrics.get('best_val_acc'))} ({derived_from(metrics)})" if is_derived(metrics) \
            else f"best val {figure(metrics.get('best_val_acc'))}{_at_epoch(metrics.get('best_epoch'))}"
        return [accuracy, Text(f"{split} loss {figure(metrics.get('loss'))}"),
                Text(f"macro F1 {figure(metrics.get('macro_f1'))}"),
                *([Text(f"with 8-view TTA {figure(tta)}")] if tta is not None else []), Text(best)]

    def test_figure(self, metrics: dict[str, Any]) -> str:
        return figure(metrics.get("accuracy"), missing="-")

    def outputs_table(self, metrics: dict[str, Any]) -> Table | None:
        return per_class_table(metrics) if isinstance(metrics.get("per_class"), dict) and metrics["per_class"] \
            else None

    def matrix(self, metrics: dict[str, Any]) -> Matrix | None:
        if not (metrics.get("classes") and metrics.get("confusion")):
            return None
        return Matrix(list(metrics["classes"]), metrics["confusion"], "confusion matrix: rows true, columns predicted")


class FractionResults:
    kind = VOTE_FRACTIONS
    answers_tab = "Answers"
    no_matrix = "no derived classification: the chosen questions leave out one the labelling rule reads"

    def headline_fields(self, metrics: dict[str, Any]) -> list[Text]:
        return [headline(metrics)]

    def test_figure(self, metrics: dict[str, Any]) -> str:
        rmse = metrics.get("rmse")
        return f"rmse {figure(rmse)}" if isinstance(rmse, (int, float)) else "-"

    def outputs_table(self, metrics: dict[str, Any]) -> Table | None:
        return question_table(metrics)

    def matrix(self, metrics: dict[str, Any]) -> Matrix | None:
        derived = metrics.get("derived") or {}
        if not (derived.get("classes") and derived.get("confusion")):
            return None
        return Matrix(list(derived["classes"]), derived["confusion"],
                      f"labelling rule at {derived.get('threshold')}: rows volunteers, columns model")


_BY_KIND: dict[str, TaskResults] = {view.kind.name: view for view in (ClassificationResults(), FractionResults())}


def results_of(metrics: dict[str, Any] | None) -> TaskResults:
    return _BY_KIND[kind_of_metrics(metrics).name]
