"""Handing results from background threads to the UI thread, also while the app is shutting down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App


def deliver(app: App, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run `callback` on the UI thread; quietly drop it if the app has already stopped (a thread that
    finishes after the user quit has nobody left to tell)."""
    if not app.is_running:
        return
    try:
        app.call_from_thread(callback, *args, **kwargs)
    except RuntimeError:
        if app.is_running:
            raise
