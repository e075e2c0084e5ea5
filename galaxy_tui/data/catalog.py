"""The one shape every dataset source produces: a catalogue and a way to read one image."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galaxy_tui.data.column_cache import cached_columns
from galaxy_tui.data.labels import VoteArrays, class_counts, label_votes
from galaxy_tui.data.vote_tree import VoteTree
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling

ImageReader = Callable[[Any], np.ndarray]


@dataclass
class Dataset:
    """A catalogue (one row per galaxy) and a reader for its images.

    frame columns: `id` (str), `ref` (what `read_image` takes), and either `label` (fixed classes)
    or the vote columns of `labels.VOTE_COLUMNS`; optionally `split` ("train"/"test") when the
    source has its own split, plus any raw targets the source keeps.

    `tree` is the decision tree whose answers a vote-fraction run predicts; its columns are in the frame,
    or `answer_source` computes them for the rows asked (see `answers`).
    """

    name: str
    kind: str
    frame: pd.DataFrame
    classes: tuple[str, ...]
    read_image: ImageReader
    fingerprint: str
    problems: list[str] = field(default_factory=list)
    location: str = ""
    tree: VoteTree | None = None
    answer_source: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    def __post_init__(self) -> None:
        """One row per galaxy: a repeated id (a.jpg beside a.png, a mapping listing an object twice) could
        otherwise put the same galaxy in train and in test."""
        repeated = self.frame["id"].duplicated(keep="first")
        if repeated.any():
            examples = ", ".join(map(str, self.frame.loc[repeated, "id"].head(3)))
            self.frame = self.frame.loc[~repeated.to_numpy()].reset_index(drop=True)
            self.problems.append(f"{int(repeated.sum())} repeated galaxy id(s) dropped (e.g. {examples}); each "
                                 f"galaxy is kept once, so it can never be in both train and test")

    @property
    def has_votes(self) -> bool:
        return "label" not in self.frame.columns

    @cached_property
    def votes(self) -> VoteArrays:
        return VoteArrays.from_frame(self.frame)

    def labels(self, labelling: Labelling) -> np.ndarray:
        """Class index per row, -1 for rows the labelling drops."""
        if self.has_votes:
            return label_votes(self.votes, labelling)
        return self.frame["label"].to_numpy(dtype=np.int8)

    def counts(self, labelling: Labelling) -> dict[str, int]:
        return class_counts(self.labels(labelling), self.classes)

    def answers(self, rows: pd.DataFrame, tree: VoteTree) -> tuple[np.ndarray, np.ndarray | None]:
        """For these catalogue rows: the tree's answers (n, outputs) as float32, NaN where the catalogue has
        none, and their vote counts where it has them (else None)."""
        source = self.answer_source(rows) if self.answer_source is not None else rows
        fractions = source[tree.columns].to_numpy(dtype=np.float32, na_value=np.nan)
        if not tree.has_counts:
            return fractions, None
        counts = source[[c for q in tree.questions for c in q.count_columns]]
        return fractions, np.nan_to_num(counts.to_numpy(dtype=np.float32, na_value=np.nan), nan=0.0)


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise GalaxyError(f"{what} not found: {path}. Check the path in experiments.toml "
                          f"(relative paths start at the workspace folder).")
    if not path.is_file():
        raise GalaxyError(f"{what} should be a file but is not: {path}.")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise GalaxyError(f"{what} folder not found: {path}. Check the path in experiments.toml "
                          f"(relative paths start at the workspace folder).")
    return path


def read_csv(path: Path, what: str, required: Iterable[str], numeric: Iterable[str] = (),
             cache_dir: Path | None = None) -> pd.DataFrame:
    """The `required` columns of a CSV (only those are parsed: the GZ2 table has over 200). `numeric`
    columns must hold numbers (or be empty): the first cell that does not is named by column and line.
    With `cache_dir`, the parsed columns are kept there and reused while the file is unchanged."""
    require_file(path, what)
    required = list(required)
    return cached_columns(path, required, cache_dir, lambda: _parse_csv(path, what, required, numeric))


@contextlib.contextmanager
def _readable_csv(path: Path, what: str) -> Iterator[None]:
    """pandas' reading errors as one message that says what to check."""
    try:
        yield
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise GalaxyError(f"{what} {path} could not be read as CSV ({type(exc).__name__}: {exc}); is it a "
                          f"UTF-8 text table?") from None


def _header(path: Path) -> list[str]:
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def csv_header(path: Path, what: str) -> set[str]:
    """The column names of a CSV (stripped), read from its first line only."""
    require_file(path, what)
    with _readable_csv(path, what):
        return {c.strip() for c in _header(path)}


def _parse_csv(path: Path, what: str, required: list[str], numeric: Iterable[str]) -> pd.DataFrame:
    with _readable_csv(path, what):
        header = _header(path)
        by_name = {c.strip(): c for c in header}
        missing = [c for c in required if c not in by_name]
        if missing:
            raise GalaxyError(f"{what} {path} is missing column(s) {', '.join(missing)}; it has "
                              f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''}.")
        frame = pd.read_csv(path, usecols=[by_name[c] for c in required])
    frame = frame.rename(columns=lambda c: str(c).strip())[required]
    for column in numeric:
        frame[column] = _numbers(frame[column], path, what, column)
    return frame


def _numbers(values: pd.Series, path: Path, what: str, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values
    converted = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(converted.isna().to_numpy() & values.notna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise GalaxyError(f"{what} {path}: column {column}, line {row + 2} holds {values.iloc[row]!r}, not a "
                          f"number ({len(bad)} such cell(s)); fix or remove those rows.")
    return converted


def file_signature(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def list_images(folder: Path) -> dict[str, os.stat_result]:
    """Image files directly in `folder`, by name, with their stat (one scandir)."""
    found: dict[str, os.stat_result] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file() and entry.name.lower().endswith((".jpg", ".jpeg", ".png")):
                    found[entry.name] = entry.stat()
    except OSError as exc:  # a folder of the dataset that cannot be read: say which, and that it is a read
        raise GalaxyError(f"cannot read the folder {folder}: {exc.strerror or exc}; check its permissions.") from None
    return found


def fingerprint_of(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def ensure_not_empty(frame: pd.DataFrame, where: str) -> None:
    if len(frame) == 0:
        raise GalaxyError(f"{where}: the dataset is empty (no usable rows). Check that the catalogue "
                          f"and the images belong together.")
