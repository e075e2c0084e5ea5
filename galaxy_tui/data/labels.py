"""The high-confidence labelling rule on vote fractions: pure and vectorised.

It runs on every drag of the UI's threshold, so it works on plain numpy arrays extracted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from galaxy_tui.registry import Labelling

if TYPE_CHECKING:
    import pandas as pd

VOTE_CLASSES: tuple[str, ...] = ("elliptical", "spiral", "edge_on")
ELLIPTICAL, SPIRAL, EDGE_ON = 0, 1, 2
UNLABELLED = -1

# The per-question fractions every vote-carrying catalogue provides under these names.
VOTE_COLUMNS: tuple[str, ...] = ("smooth", "disk", "artifact", "edgeon_yes", "edgeon_no", "spiral",
                                 "total_classifications")


@dataclass(frozen=True)
class VoteArrays:
    smooth: np.ndarray
    disk: np.ndarray
    artifact: np.ndarray
    edgeon_yes: np.ndarray
    edgeon_no: np.ndarray
    spiral: np.ndarray
    total_classifications: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> VoteArrays:
        return cls(*(frame[column].to_numpy(dtype=np.float32, na_value=np.nan) for column in VOTE_COLUMNS))


def usable_votes(votes: VoteArrays, labelling: Labelling) -> np.ndarray:
    """Galaxies with enough volunteers and not called an artefact: what a vote-fraction run trains on, and
    what the labelling rule looks at. NaN in total_classifications (no counts) passes the count cut."""
    enough_votes = ~(votes.total_classifications < labelling.min_classifications)
    return enough_votes & (votes.artifact < labelling.max_artifact)


def label_votes(votes: VoteArrays, labelling: Labelling) -> np.ndarray:
    """Class index per row (ELLIPTICAL, SPIRAL, EDGE_ON) or UNLABELLED.

    NaN in total_classifications (a catalogue without counts) passes the count cut; NaN fractions fail.
    """
    t = np.float32(labelling.threshold)
    usable = usable_votes(votes, labelling)
    disk = votes.disk >= t
    labels = np.full(votes.smooth.shape, UNLABELLED, dtype=np.int8)
    labels[usable & (votes.smooth >= t)] = ELLIPTICAL
    labels[usable & disk & (votes.edgeon_yes >= t)] = EDGE_ON
    labels[usable & disk & (votes.edgeon_no >= t) & (votes.spiral >= t)] = SPIRAL
    return labels


def label_agreement(votes: VoteArrays, labels: np.ndarray) -> np.ndarray:
    """How sure the volunteers were of each galaxy's label: the weakest vote fraction on its path down the
    tree (the rule asks each of them to reach the threshold). NaN for unlabelled rows."""
    paths = {ELLIPTICAL: votes.smooth, EDGE_ON: np.minimum(votes.disk, votes.edgeon_yes),
             SPIRAL: np.minimum(np.minimum(votes.disk, votes.edgeon_no), votes.spiral)}
    agreement = np.full(labels.shape, np.nan, dtype=np.float32)
    for label, fraction in paths.items():
        agreement[labels == label] = fraction[labels == label]
    return agreement


def class_counts(labels: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict[str, int]:
    counts = np.bincount(labels[labels >= 0].astype(np.int64), minlength=len(classes))
    return {name: int(counts[i]) for i, name in enumerate(classes)}


def empty_class_warning(counts: dict[str, int], where: str) -> str | None:
    empty = [name for name, n in counts.items() if n == 0]
    if not empty:
        return None
    shown = ", ".join(f"{name}={n}" for name, n in counts.items())
    return (f"{where}: class {', '.join(empty)} has no galaxies at this labelling ({shown}); "
            f"lower the threshold or min_classifications.")
