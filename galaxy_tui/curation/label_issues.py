"""Likely wrong labels. A classification ranks its labelled galaxies by cleanlab's label quality (the
out-of-sample probability of the given label: self-confidence), and marks those cleanlab's `find_label_issues`
(confident learning) calls issues. A vote-fraction dataset has no label to be wrong, so it ranks by how far the
volunteers' fractions lie from the out-of-sample fractions, weighted by the square root of the vote count: the
volunteers' own sampling error shrinks as 1/sqrt(votes), so a large gap over many votes is the surprising one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores


def class_label_issues(ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                       classes: tuple[str, ...]) -> pd.DataFrame:
    """id, given, suggested, quality (lower: likelier wrong), issue (cleanlab's call), most suspect first."""
    probabilities = probabilities / np.clip(probabilities.sum(1, keepdims=True), 1e-12, None)
    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    issues = np.zeros(len(labels), dtype=bool)
    # n_jobs=1: cleanlab forks a process pool by default, and a fork of the worker (torch's and the heartbeat's
    # threads running) can hang on a lock one of them held: a curate job once waited at "ranking" for good
    issues[find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)] = True
    names = np.asarray(classes)
    frame = pd.DataFrame({"id": ids, "given": names[labels], "suggested": names[probabilities.argmax(1)],
                          "quality": np.round(quality, 5), "issue": issues})
    return _ranked(frame, "quality", ascending=True)


def fraction_label_issues(ids: np.ndarray, volunteers: np.ndarray, predicted: np.ndarray, votes: np.ndarray | None,
                          answers: tuple[str, ...]) -> pd.DataFrame:
    """id, the answer where volunteers and model differ most, both fractions there, gap (RMS over the answers
    times sqrt(votes)), most suspect first. Without vote counts (Kaggle's table) every galaxy weighs 1."""
    difference = predicted - volunteers  # NaN where the catalogue has no fraction for an answer
    answered = ~np.isnan(difference)
    worst = np.where(answered, np.abs(difference), -1.0).argmax(1)
    rows = np.arange(len(ids))
    weight = np.sqrt(np.clip(votes, 1, None)) if votes is not None else np.ones(len(ids))
    squared = np.where(answered, difference ** 2, 0.0).sum(1) / np.maximum(answered.sum(1), 1)
    frame = pd.DataFrame({"id": ids, "answer": np.asarray(answers)[worst],
                          "volunteers": np.round(volunteers[rows, worst], 3),
                          "model": np.round(predicted[rows, worst], 3),
                          "gap": np.round(np.sqrt(squared) * weight, 5)})
    return _ranked(frame, "gap", ascending=False)


def _ranked(frame: pd.DataFrame, by: str, ascending: bool) -> pd.DataFrame:
    frame = frame.sort_values(by, ascending=ascending, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame
