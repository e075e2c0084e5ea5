"""How sure a classifier was against how often it was right, as `show` and the Results pane draw it
(from metrics.json: no predictions file is read)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def calibration_line(metrics: dict[str, Any]) -> str | None:
    """One line: the temperature and the calibration error before and after, or None for a result without."""
    calibration = metrics.get("calibration")
    if not calibration:
        return None
    split = str(metrics.get("split", "test"))
    by_loss = "val_nll_before" in calibration  # older results chose by the binned error
    kept = calibration["temperature"] == 1.0
    how = (f"temperature kept at 1: scaling did not lower the validation "
           f"{'log-loss' if by_loss else 'calibration error'}" if kept else
           f"temperature {calibration['temperature']:.2f} fitted on validation"
           + (f" (log-loss {calibration['val_nll_before']:.3f} -> {calibration['val_nll_after']:.3f})" if by_loss
              else "") + "; predictions.csv has pcal_*")
    bins = f" ({calibration['bins']} bins)" if calibration.get("bins") else ""
    return (f"expected calibration error{bins} {split} {calibration['ece_before']:.3f} -> "
            f"{calibration['ece_after']:.3f}, validation {calibration['val_ece_before']:.3f} -> "
            f"{calibration['val_ece_after']:.3f} ({how})")


def draw_reliability(plt: Any, metrics: dict[str, Any]) -> None:
    """Accuracy against confidence per bin, before and after temperature scaling, with the diagonal a
    calibrated model follows (`plt`: plotext or a textual-plotext widget's plt)."""
    calibration = metrics.get("calibration") or {}
    for key, label in (("reliability_before", "as trained"), ("reliability_after", "calibrated")):
        filled = [b for b in calibration.get(key, []) if b["count"]]
        if filled:
            plt.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], marker="dot", label=label)
    plt.plot([0, 1], [0, 1], color="gray", label="calibrated = diagonal")
    plt.xlim(0, 1)
    plt.ylim(0, 1)
    plt.xlabel("confidence")
    plt.ylabel("accuracy")
    plt.title("reliability")


def draw_confidence(plt: Any, metrics: dict[str, Any]) -> None:
    """How many right and wrong answers fell in each tenth of confidence, all classes together."""
    histograms = (metrics.get("confidence") or {}).values()
    right = [sum(column) for column in zip(*(h["right"] for h in histograms))]
    wrong = [sum(column) for column in zip(*(h["wrong"] for h in histograms))]
    if right:
        labels = [f"{b / len(right):.1f}" for b in range(len(right))]
        plt.multiple_bar(labels, [right, wrong], labels=["right", "wrong"])
    plt.xlabel("confidence (from)")
    plt.ylabel("galaxies")
    plt.title("confidence of right and wrong answers")


def per_class_table(metrics: dict[str, Any]) -> Table:
    """Per class, in astronomers' words beside the usual ones, with how sure right and wrong answers were."""
    histograms = metrics.get("confidence") or {}  # results written before it was measured have none
    table = Table(title="per class (median confidence of its right | wrong answers)" if histograms else "per class")
    names = list(metrics["per_class"])
    table.add_column("class", no_wrap=True, min_width=min(24, max(map(len, names), default=5)))
    columns = ["purity\nprecision", "completeness\nrecall", "F1", "n"] + \
        (["confidence\nright | wrong"] if histograms else [])
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for name, row in metrics["per_class"].items():
        counts = histograms.get(name, {})
        confidence = [f"{_median(counts, 'right')} | {_median(counts, 'wrong')}"] if histograms else []
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                      str(row["support"]), *confidence)
    return table


def _median(histogram: dict[str, Any], kind: str) -> str:
    """The median confidence of a class's right (or wrong) answers, "-" with none. Results written before the
    medians were kept have only the tenths: the median is then read off them (~, to the bin's straight line)."""
    exact = histogram.get(f"{kind}_median")
    if isinstance(exact, (int, float)):
        return f"{exact:.3f}"
    counts = histogram.get(kind)
    if not counts or not sum(counts):
        return "-"
    middle, seen, width = sum(counts) / 2, 0, 1 / len(counts)
    for b, count in enumerate(counts):
        if count and seen + count >= middle:
            return f"~{(b + (middle - seen) / count) * width:.2f}"
        seen += count
    return "-"


def threshold_table(metrics: dict[str, Any]) -> Table:
    """Accuracy on galaxies never trained on, by the vote threshold that labels them."""
    trained_at = metrics.get("threshold")
    table = Table(title="accuracy by vote threshold", caption=f"galaxies never trained on; ◀ trained at {trained_at}",
                  min_width=48)
    for column in ("threshold", "galaxies", "accuracy"):
        table.add_column(column, justify="right")
    for row in metrics["thresholds"]:
        mark = " ◀" if trained_at is not None and abs(row["threshold"] - trained_at) < 1e-9 else ""
        table.add_row(f"{row['threshold']:.2f}{mark}", str(row["galaxies"]),
                      "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}")
    return table


def draw_threshold_accuracy(plt: Any, metrics: dict[str, Any]) -> None:
    """Accuracy on the galaxies never trained on against the vote threshold that labels them, with the
    threshold the run was trained at marked."""
    rows = [row for row in metrics.get("thresholds") or [] if row["accuracy"] is not None]
    if rows:
        plt.plot([row["threshold"] for row in rows], [row["accuracy"] for row in rows], marker="dot",
                 label="accuracy")
    trained_at = metrics.get("threshold")
    if isinstance(trained_at, (int, float)):
        plt.vline(trained_at, color="gray")
    lowest = min((row["accuracy"] for row in rows), default=0.0)
    plt.ylim(max(0.0, lowest - 0.05), 1.0)
    plt.xlabel(f"vote threshold (gray: trained at {trained_at})")
    plt.ylabel("accuracy")
    plt.title("accuracy by vote threshold")


def draw_threshold_counts(plt: Any, metrics: dict[str, Any]) -> None:
    """How many never-trained-on galaxies each threshold labels: fewer, surer ones as it rises."""
    rows = metrics.get("thresholds") or []
    if rows:
        plt.bar([f"{row['threshold']:.2f}" for row in rows], [row["galaxies"] for row in rows], width=0.6)
    plt.xlabel("vote threshold")
    plt.ylabel("galaxies")
    plt.title("galaxies labelled")
