"""From a run's embedding to its curation lists, written beside it in `RUN/curation/`: label_issues.csv,
label_next.csv, odd_ones.csv, map.csv (the 2-D map) and summary.json (what was done, with the counts)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxy_tui.atomic import atomic_write_json
from galaxy_tui.curation.embedding import LEFT_OUT, Embedding
from galaxy_tui.curation.files import LABEL_ISSUES, LABEL_NEXT, MAP, ODD_ONES, SUMMARY
from galaxy_tui.curation.heads import class_heads, fraction_heads
from galaxy_tui.curation.label_issues import class_label_issues, fraction_label_issues
from galaxy_tui.curation.label_next import fraction_disagreement, label_next
from galaxy_tui.curation.map2d import pca_map, umap_map
from galaxy_tui.curation.odd_ones import odd_ones


@dataclass(frozen=True)
class Targets:
    """What the labelled galaxies (the embedding's rows outside `left-out`, in order) were trained on: a class
    index each (classification), or the volunteers' fractions per answer and their vote counts."""
    classes: tuple[str, ...]
    labels: np.ndarray | None = None     # classification
    fractions: np.ndarray | None = None  # vote fractions: galaxies x answers
    answers: tuple[str, ...] = ()
    votes: np.ndarray | None = None      # total votes per galaxy, where the catalogue counts them


def write_rankings(folder: Path, embedding: Embedding, targets: Targets, seed: int = 0,
                   layout: str = "pca", statistics: np.ndarray | None = None) -> dict[str, object]:
    """`statistics`: each galaxy's morphology (curation.morphology), in the embedding's order, for the odd ones."""
    started = time.perf_counter()
    vectors = np.asarray(embedding.vectors, dtype=np.float32)
    ids = embedding.ids
    left_out = (embedding.galaxies["part"] == LEFT_OUT).to_numpy()
    labelled = ~left_out
    if targets.labels is not None:
        heads = class_heads(vectors[labelled], targets.labels, len(targets.classes), vectors[left_out], seed)
        issues = class_label_issues(ids[labelled], targets.labels, heads.out_of_sample, targets.classes)
        nexts = label_next(ids[left_out], heads.members, targets.classes)
        issue_count = int(issues["issue"].sum())
    else:
        assert targets.fractions is not None
        heads = fraction_heads(vectors[labelled], targets.fractions, vectors[left_out], seed)
        issues = fraction_label_issues(ids[labelled], targets.fractions, heads.out_of_sample, targets.votes,
                                       targets.answers)
        nexts = fraction_disagreement(ids[left_out], heads.members, targets.answers)
        issue_count = None
    issues.to_csv(folder / LABEL_ISSUES, index=False)
    nexts.to_csv(folder / LABEL_NEXT, index=False)
    odd_ones(ids, vectors, seed, statistics).to_csv(folder / ODD_ONES, index=False)
    layout_of = umap_map if layout == "umap" else pca_map
    layout_of(vectors, seed).assign(id=ids).to_csv(folder / MAP, index=False)
    summary = {"galaxies": int(len(ids)), "labelled": int(labelled.sum()), "left_out": int(left_out.sum()),
               "features": int(vectors.shape[1]), "folds": int(len(heads.members)),
               "heads": "logistic regression" if targets.labels is not None else "ridge regression",
               "label_issues": issue_count, "map": layout, "morphology": statistics is not None,
               "seconds": round(time.perf_counter() - started, 1), "t": time.time()}
    atomic_write_json(folder / SUMMARY, summary)
    return summary
