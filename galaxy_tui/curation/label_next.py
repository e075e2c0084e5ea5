"""What to label next: the galaxies without a label, ranked by how unsure the model is of them. Entropy of the
heads' mean prediction says how unsure; BALD (the mutual information between the prediction and the head, here
over the k fold heads as an ensemble: entropy of the mean minus the mean entropy) says how much the heads
disagree, which is what a new label resolves (Houlsby et al. 2011; Walmsley et al. 2019 for Galaxy Zoo)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def entropy(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-12, 1.0)
    return -(p * np.log(p)).sum(-1)


def label_next(ids: np.ndarray, members: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """id, predicted class, entropy, bald; the most informative first (by BALD, then entropy)."""
    members = members / np.clip(members.sum(-1, keepdims=True), 1e-12, None)
    mean = members.mean(0)
    total = entropy(mean)
    bald = total - entropy(members).mean(0)
    frame = pd.DataFrame({"id": ids, "predicted": np.asarray(classes)[mean.argmax(1)],
                          "entropy": np.round(total, 5), "bald": np.round(np.clip(bald, 0, None), 6)})
    frame = frame.sort_values(["bald", "entropy"], ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def fraction_disagreement(ids: np.ndarray, members: np.ndarray, answers: tuple[str, ...]) -> pd.DataFrame:
    """For vote fractions: id, the answer the heads disagree on most, disagreement (the heads' standard deviation,
    averaged over the answers); the most disputed first."""
    spread = members.std(0)
    frame = pd.DataFrame({"id": ids, "answer": np.asarray(answers)[spread.argmax(1)] if len(ids) else [],
                          "disagreement": np.round(spread.mean(1), 6)})
    frame = frame.sort_values("disagreement", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame
