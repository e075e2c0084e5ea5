"""A path field that Tab completes, as a shell does: the longest common start of the names that fit, the
whole name (and a "/" for a folder) when only one fits; the candidates are said below."""

from __future__ import annotations

import os
from pathlib import Path

from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input


def complete_path(text: str, base: Path) -> tuple[str, list[str]]:
    """(the completed text, the names that fit) for what was typed; relative paths start at `base`."""
    folder_text, _, start = text.rpartition("/")
    folder_typed = folder_text + "/" if "/" in text else ""
    folder = Path(os.path.expanduser(folder_text or ("/" if text.startswith("/") else ".")))
    if not folder.is_absolute():
        folder = base / folder
    try:
        names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in os.scandir(folder)
                       if entry.name.startswith(start) and (start.startswith(".") or not entry.name.startswith(".")))
    except OSError:
        return text, []
    if not names:
        return text, []
    common = os.path.commonprefix(names)
    return folder_typed + common, names


class PathSuggester(Suggester):
    """The grey rest of the single name that fits (→ or Tab takes it)."""

    def __init__(self, base: Path):
        super().__init__(use_cache=False, case_sensitive=True)
        self.base = base

    async def get_suggestion(self, value: str) -> str | None:
        completed, names = complete_path(value, self.base)
        return completed if len(names) == 1 and completed != value else None


class PathInput(Input):
    BINDINGS = [Binding("tab", "complete", "Complete the path", show=False)]

    class Candidates(Message):
        def __init__(self, names: list[str]):
            super().__init__()
            self.names = names

    def __init__(self, base: Path, **kwargs: object):
        super().__init__(suggester=PathSuggester(base), **kwargs)  # type: ignore[arg-type]
        self.base = base

    def action_complete(self) -> None:
        completed, names = complete_path(self.value, self.base)
        if completed != self.value:
            self.value = completed
            self.cursor_position = len(completed)
        self.post_message(self.Candidates(names if len(names) > 1 else []))
