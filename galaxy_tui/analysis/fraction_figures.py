"""What a vote-fraction run's results say, as tables and plots the Results pane and `galaxy-tui show` share:
per-question errors beside the mean baseline, predicted against true for one answer, the residuals'
spread. Reads results/metrics.json and predictions.csv (stdlib csv: no pandas or torch here)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from galaxy_tui.analysis.derived_results import derived_from, is_derived

BAR_WIDTH = 20


def _figure(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def headline(metrics: dict[str, Any]) -> Text:
    """ "test RMSE 0.0912 (mean baseline 0.2480, 2.7x better) · MAE 0.0601 (0.1953) · best val RMSE ..." """
    split = str(metrics.get("split", "test"))
    baseline = metrics.get("baseline") or {}
    text = Text(f"{split} RMSE ")
    text.append(_figure(metrics.get("rmse")), style="bold green")
    rmse, base = metrics.get("rmse"), baseline.get("rmse")
    ratio = f", {base / rmse:.1f}x better" if isinstance(rmse, (int, float)) and rmse > 0 and \
        isinstance(base, (int, float)) else ""
    chosen = derived_from(metrics) if is_derived(metrics) else f"epoch {metrics.get('best_epoch')}"
    text.append(f" (mean baseline {_figure(base)}{ratio})  MAE {_figure(metrics.get('mae'))} "
                f"(baseline {_figure(baseline.get('mae'))})  best val RMSE {_figure(metrics.get('best_val_rmse'))} "
                f"({chosen})  loss: {metrics.get('loss_function', 'mse')}")
    derived = metrics.get("derived") or {}
    if derived.get("accuracy_on_sure") is not None:
        text.append(f"\nthe labelling rule at threshold {derived.get('threshold')} on the predicted answers agrees "
                    f"with the volunteers on {derived['accuracy_on_sure']:.1%} of the {derived.get('sure_galaxies')} "
                    f"galaxies they were sure of")
    return text


def _bar(value: Any, scale: float, style: str) -> Text:
    if not isinstance(value, (int, float)) or scale <= 0:
        return Text("")
    return Text("█" * max(1, round(BAR_WIDTH * value / scale)), style=style)


def question_table(metrics: dict[str, Any]) -> Table:
    """Per question: RMSE and MAE of the model and of the mean baseline, with bars on one scale."""
    questions = metrics.get("questions") or []
    scale = max([q.get(k) or 0.0 for q in questions for k in ("rmse", "baseline_rmse")] or [0.0])
    table = Table(title="RMSE per question: model (green) vs the training split's mean (grey)", expand=False)
    for column, justify in (("question", "left"), ("RMSE", "right"), ("baseline", "right"), ("", "left"),
                            ("MAE", "right"), ("baseline", "right")):
        table.add_column(column, justify=justify, no_wrap=column == "")
    for q in questions:
        bars = _bar(q.get("rmse"), scale, "green")
        bars.append("\n")
        bars.append_text(_bar(q.get("baseline_rmse"), scale, "grey50"))
        table.add_row(f"{q['key']}\n[dim]{q.get('text', '')}[/dim]", _figure(q.get("rmse")),
                      _figure(q.get("baseline_rmse")), bars, _figure(q.get("mae")), _figure(q.get("baseline_mae")))
    return table


@dataclass
class FractionPredictions:
    """predictions.csv of a vote-fraction run: per galaxy, every true and predicted answer and the RMSE."""

    ids: list[str]
    truth: dict[str, list[float]]
    predicted: dict[str, list[float]]
    rmse: list[float]

    @property
    def answers(self) -> list[str]:
        return list(self.truth)

    @classmethod
    def read(cls, path: Path) -> FractionPredictions | None:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        if not rows:
            return None
        answers = [c[len("true_"):] for c in rows[0] if c.startswith("true_") and f"pred_{c[5:]}" in rows[0]]

        def numbers(column: str) -> list[float]:
            return [csv_number(row.get(column)) for row in rows]

        return cls([row.get("id", "") for row in rows], {a: numbers(f"true_{a}") for a in answers},
                   {a: numbers(f"pred_{a}") for a in answers}, numbers("rmse"))


def csv_number(text: str | None) -> float:
    """A CSV cell as a number; NaN when it is empty or not one."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def draw_scatter(plt: Any, predictions: FractionPredictions, answer: str) -> None:
    """Predicted against true for one answer, with the line where they are equal (`plt`: plotext or a
    textual-plotext widget's plt)."""
    pairs = [(t, p) for t, p in zip(predictions.truth[answer], predictions.predicted[answer])
             if math.isfinite(t) and math.isfinite(p)]
    if pairs:
        plt.scatter([t for t, _ in pairs], [p for _, p in pairs], marker="dot", label=answer)
    top = max([1.0] + [max(t, p) for t, p in pairs])
    plt.plot([0, top], [0, top], color="gray", label="predicted = true")
    plt.xlabel(f"true {answer}")
    plt.ylabel("predicted")
    plt.title(f"{answer}: predicted vs true")


def draw_residuals(plt: Any, predictions: FractionPredictions, bins: int = 30) -> None:
    """The spread of the per-galaxy RMSE."""
    values = [v for v in predictions.rmse if math.isfinite(v)]
    if values:
        plt.hist(values, bins=bins, label="galaxies")
    plt.xlabel("RMSE of a galaxy's answers")
    plt.ylabel("galaxies")
    plt.title("residuals")
