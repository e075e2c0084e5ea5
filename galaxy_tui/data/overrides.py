"""A person's decisions about single galaxies of a dataset, kept beside its catalogue and never in it: one CSV
per dataset in the workspace (`overrides/<dataset>.csv`: id, action, new_label, note, time). `exclude` drops the
galaxy from the runs that follow, `relabel` gives it another class, `keep` takes back an earlier decision; a
galaxy's latest line is the one that holds. A run freezes a copy of the file when it starts: the decisions enter
its configuration hash and its manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.atomic import atomic_write_bytes
from galaxy_tui.errors import GalaxyError

FOLDER = "overrides"
RUN_COPY = "overrides.csv"
COLUMNS = ("id", "action", "new_label", "note", "time")
ACTIONS = ("exclude", "relabel", "keep")


def overrides_file(workspace: Path, dataset: str) -> Path:
    return workspace / FOLDER / f"{dataset}.csv"


@dataclass(frozen=True)
class Overrides:
    decisions: pd.DataFrame  # one row per galaxy with a standing decision: id, action, new_label, note, time
    digest: str              # of the standing decisions, for the configuration hash

    @property
    def excluded(self) -> set[str]:
        return set(self.decisions.loc[self.decisions["action"] == "exclude", "id"])

    @property
    def relabelled(self) -> dict[str, str]:
        chosen = self.decisions[self.decisions["action"] == "relabel"]
        return dict(zip(chosen["id"], chosen["new_label"]))


@dataclass(frozen=True)
class Applied:
    excluded: int
    relabelled: int

    def as_record(self, digest: str) -> dict[str, object]:
        return {"excluded": self.excluded, "relabelled": self.relabelled, "digest": digest}


def read_overrides(path: Path) -> Overrides | None:
    """The standing decisions in `path` (None when there is no file or none stands); a GalaxyError naming the
    line of a damaged one."""
    if not path.exists():
        return None
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise GalaxyError(f"{path} cannot be read as a CSV ({exc}); fix or remove it.") from None
    missing = [column for column in ("id", "action") if column not in raw.columns]
    if missing:
        raise GalaxyError(f"{path} has no {' or '.join(missing)} column; its header must be "
                          f"{','.join(COLUMNS)}.")
    for column in COLUMNS:
        if column not in raw.columns:
            raw[column] = ""
    wrong = raw[~raw["action"].isin(ACTIONS)]
    if len(wrong):
        line = int(wrong.index[0]) + 2
        raise GalaxyError(f"{path}, line {line}: action {wrong['action'].iloc[0]!r} is unknown; use one of "
                          f"{', '.join(ACTIONS)}.")
    unnamed = raw[(raw["action"] == "relabel") & (raw["new_label"].str.strip() == "")]
    if len(unnamed):
        raise GalaxyError(f"{path}, line {int(unnamed.index[0]) + 2}: relabel without a new_label; name the class.")
    standing = raw.drop_duplicates("id", keep="last")
    standing = standing[standing["action"] != "keep"].loc[:, list(COLUMNS)].reset_index(drop=True)
    if standing.empty:
        return None
    text = standing[["id", "action", "new_label"]].sort_values("id").to_csv(index=False)
    return Overrides(standing, hashlib.sha256(text.encode()).hexdigest()[:16])


def record_decision(path: Path, galaxy_id: str, action: str, new_label: str = "", note: str = "") -> None:
    """Append one decision (the file is rewritten whole and renamed into place: never half a line)."""
    if action not in ACTIONS:
        raise GalaxyError(f"action {action!r} is unknown; use one of {', '.join(ACTIONS)}.")
    if action == "relabel" and not new_label.strip():
        raise GalaxyError("a relabel needs the new class.")
    before = path.read_bytes() if path.exists() else b""
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\n")
    if not before:
        writer.writerow(COLUMNS)
    elif not before.endswith(b"\n"):
        line.write("\n")
    writer.writerow([galaxy_id, action, new_label if action == "relabel" else "", note,
                     time.strftime("%Y-%m-%dT%H:%M:%S")])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, before + line.getvalue().encode())


def apply_overrides(ids: pd.Series, labels: np.ndarray, classes: tuple[str, ...], overrides: Overrides | None,
                    where: str) -> tuple[np.ndarray, Applied]:
    """The labels with the decisions applied: an excluded galaxy gets -1 (no class: left out), a relabelled one
    its new class. Decisions about galaxies the catalogue lacks are ignored (they may be from another labelling);
    a class the dataset does not have is a GalaxyError naming it."""
    if overrides is None:
        return labels, Applied(0, 0)
    labels = labels.copy()
    text_ids = ids.astype(str)
    excluded = text_ids.isin(overrides.excluded).to_numpy()
    labels[excluded] = -1
    relabelled = 0
    for galaxy_id, new_label in overrides.relabelled.items():
        if new_label not in classes:
            raise GalaxyError(f"{where}: galaxy {galaxy_id} is relabelled {new_label!r}, which is not a class of "
                              f"this dataset ({', '.join(classes)}); change or take back that decision.")
        rows = np.flatnonzero((text_ids == galaxy_id).to_numpy())
        labels[rows] = classes.index(new_label)
        relabelled += len(rows)
    return labels, Applied(int(excluded.sum()), relabelled)
