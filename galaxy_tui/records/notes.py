"""A run's tags and free-text note, kept in its folder (notes.json) so they travel with the run and
survive anything the app does. Only people write this file: the worker never touches it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.errors import GalaxyError

NOTES_FILE = "notes.json"
_TAG = re.compile(r"[A-Za-z0-9_.+-]{1,32}")


@dataclass(frozen=True)
class RunNotes:
    tags: tuple[str, ...] = ()
    note: str = ""
    problem: str = ""  # why notes.json could not be read ("" when it could, or there is none)


def read_notes(run_dir: Path) -> RunNotes:
    path = run_dir / NOTES_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunNotes()
    except (OSError, ValueError) as exc:
        return RunNotes(problem=f"{path} cannot be read ({exc})")
    if not isinstance(raw, dict):
        return RunNotes(problem=f"{path} holds no JSON object")
    tags = raw.get("tags", [])
    tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
    return RunNotes(tags, str(raw.get("note") or ""))


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags as a person types them: separated by spaces or commas, a leading # allowed; each once."""
    tags: list[str] = []
    for word in re.split(r"[\s,]+", text.strip()):
        word = word.removeprefix("#")
        if not word:
            continue
        if not _TAG.fullmatch(word):
            raise GalaxyError(f"tag {word!r}: a tag is 1 to 32 letters, digits or . _ + - (no spaces); "
                              f"separate tags with spaces or commas.")
        if word not in tags:
            tags.append(word)
    return tuple(tags)


def write_notes(run_dir: Path, tags: tuple[str, ...], note: str) -> RunNotes:
    """Replace the run's tags and note. A notes.json that cannot be read is not overwritten: it may hold a
    person's words."""
    if not (run_dir / "status.json").exists():
        raise GalaxyError(f"{run_dir} is not a run folder (no status.json); nothing was written.")
    current = read_notes(run_dir)
    if current.problem:
        raise GalaxyError(f"{current.problem}: fix or delete the file; nothing was written.")
    atomic_write_json(run_dir / NOTES_FILE, {"tags": list(tags), "note": note.strip()})
    return RunNotes(tags, note.strip())
