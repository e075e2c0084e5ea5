"""Building an ensemble from the runs marked in the runs list or the Compare tab: the weights asked in a
dialog, the combining done in a thread (it reads prediction files and draws thumbnails)."""

from __future__ import annotations

from textual.app import App

from galaxy_tui.app.dialogs import ChoiceDialog
from galaxy_tui.app.threads import deliver
from galaxy_tui.errors import GalaxyError
from galaxy_tui.runs import RunInfo


def offer_ensemble(app: App) -> None:
    """Ask for the weights, then combine the marked runs; the runs list reads the new folder at once."""
    store = app.store  # type: ignore[attr-defined]
    runs = [store.records[run_id].info for run_id in store.marked if run_id in store.records]
    if len(runs) < 2:
        app.notify("an ensemble needs two or more finished runs: mark them with space, then press e",
                   severity="warning", timeout=6)
        return

    def chosen_scheme(scheme: str | None) -> None:
        if scheme is not None:
            app.notify(f"combining {len(runs)} runs ({scheme} weights)…", timeout=3)
            app.run_worker(lambda: _build(app, runs, scheme), thread=True, group="ensemble")

    by_accuracy = [("val-accuracy", "Val accuracy", "a")] if runs[0].metric == "val_acc" else []
    app.push_screen(ChoiceDialog(
        f"Combine {', '.join(r.id for r in runs)}: weights from their validation galaxies",
        [("equal", "Equal", "e"), *by_accuracy, ("inverse-val-mae", "1 / val MAE", "m"),
         ("inverse-val-rmse", "1 / val RMSE", "r")], "ensemble-choice"), chosen_scheme)


def _build(app: App, runs: list[RunInfo], scheme: str) -> None:
    from galaxy_tui.analysis.ensemble import build_ensemble  # pandas and scikit-learn: not at start-up
    try:
        result = build_ensemble(app.registry.runs_dir, runs, scheme)  # type: ignore[attr-defined]
    except (GalaxyError, OSError) as exc:
        deliver(app, app.notify, str(exc), title="ensemble", severity="error", timeout=10)
        return
    deliver(app, app.notify, f"{result.id}: {result.message}", title="ensemble built", timeout=10)
    reader = getattr(app, "reader", None)
    if reader is not None:
        reader.wake.set()  # a thread-safe event: the scan runs now, not at its next tick
