"""Image files named on a command line: files as given, folders searched recursively, in a stable order;
what is not an image is set aside with the reason, to be counted and listed rather than fail the batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")


@dataclass
class Collected:
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, why)


def collect_images(paths: list[Path]) -> Collected:
    collected = Collected()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            collected.files.append(path)

    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                if found.suffix.lower() in IMAGE_SUFFIXES:
                    add(found)
                elif not found.name.startswith("."):
                    collected.skipped.append((found, "not an image (by its name)"))
        elif path.is_file():
            add(path)  # named on purpose: decoding decides
        else:
            collected.skipped.append((path, "no such file or folder"))
    return collected
