"""The Results pane's Compare tab as data: its rows sorted within comparable groups, the text that names the
groups (and why the run under the cursor is not comparable with the first), and the overlaid validation curves."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.text import Text

from galaxy_tui.analysis.comparison import Comparability
from galaxy_tui.analysis.task_results import results_of
from galaxy_tui.app.curves import visible
from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.store import RunRecord
from galaxy_tui.run_model import RunModel
from galaxy_tui.scores import score_of_epochs

COMPARE_COLUMNS = ("grp", "run", "experiment", "model", "thr", "best val", "test", "minutes", "tags", "note")
DESCENDING_FROM = 5  # figures sort best first; names ascending
OVERLAY_RUNS = 6


def compare_rows(records: list[RunRecord], groups: dict[str, int], marked: list[str],
                 sort_column: int) -> tuple[list[tuple[str, ...]], bool]:
    """The table's rows (the run id last, as the row key), each group together and sorted within by
    `sort_column`; and whether that sort is descending."""
    rows = []
    for record in records:
        m = record.metrics
        threshold = m.get("threshold")
        rows.append((f"G{groups[record.info.id]}", ("● " if record.info.id in marked else "") + record.info.id,
                     record.info.experiment, m.get("model", ""),
                     f"{threshold:g}" if isinstance(threshold, (int, float)) else "-", record.info.best_text,
                     results_of(m).test_figure(m) + (" (val)" if m.get("split") == "validation" else ""),
                     f"{(m.get('seconds') or 0) / 60:.1f}", " ".join(f"#{t}" for t in record.notes.tags),
                     record.notes.note, record.info.id))
    descending = DESCENDING_FROM <= sort_column < COMPARE_COLUMNS.index("tags")
    rows.sort(key=lambda row: row[sort_column], reverse=descending)
    rows.sort(key=lambda row: int(row[0][1:]))  # stable: each group together, sorted within
    return rows, descending


def groups_text(keys: list[Comparability], groups: dict[str, int], under_cursor: str | None, width: int) -> Text:
    """The groups, each kept whole on its line; and why the run under the cursor cannot be compared with
    group 1 (the newest result's)."""
    if len(keys) < 2:
        return Text("all runs comparable: " + keys[0].describe() if keys else "", style="dim")
    counts = Counter(groups.values())
    fields = [Text("comparable groups:", style="dim")]
    fields += [Text(f"G{n} {key.describe()} ({counts[n]})") for n, key in enumerate(keys, start=1)]
    text = pack_fields(fields, width)
    group = groups.get(under_cursor, 1) if under_cursor is not None else 1
    if group != 1:
        text.append(f"\nG{group} vs G1: ", style="bold yellow")
        text.append(keys[0].why_not(keys[group - 1]))
    return text


def validation_curves(folders: list[tuple[str, Path]]) -> list[tuple[str, list[float], list[float]]]:
    """Each run's validation score by epoch (read from its events: a thread's work)."""
    curves = []
    for run_id, folder in folders:
        model = RunModel.of_run(folder)
        score = score_of_epochs(model.epochs)
        curves.append((f"{run_id} ({score.short})", *model.epoch_series("epoch", score.key)))
    return curves


def draw_overlay(plt: Any, curves: list[tuple[str, list[float], list[float]]], title: str) -> None:
    plt.clear_data()
    plt.title(title)
    plt.xlabel("epoch")
    for run_id, *series in curves:
        epochs, accuracy = visible(*series, None)
        if epochs:
            plt.plot(epochs, accuracy, label=run_id, marker="braille")
