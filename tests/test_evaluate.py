"""Evaluation artefacts with the volunteers' votes: agreement per galaxy, and mistakes chosen both by the
model's confidence and by how split the volunteers were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.analysis.classification_results import volunteer_table, write_results
from galaxy_tui.analysis.measured import Measured
from galaxy_tui.data.labels import VOTE_CLASSES, VoteArrays, label_votes
from galaxy_tui.registry import Labelling


def votes_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    smooth = rng.uniform(0, 1, n)
    edgeon = rng.uniform(0, 1, n)
    spiral = rng.uniform(0, 1, n)
    return pd.DataFrame({"id": [f"g{i}" for i in range(n)], "smooth": smooth, "disk": 1 - smooth, "artifact": 0.0,
                         "edgeon_yes": edgeon, "edgeon_no": 1 - edgeon, "spiral": spiral,
                         "total_classifications": rng.integers(20, 60, n).astype(float)})


def expected_agreement(row: pd.Series, label: str) -> float:
    """The weakest answer on the label's path, written out question by question."""
    if label == "elliptical":
        return row["smooth"]
    if label == "edge_on":
        return min(row["disk"], row["edgeon_yes"])
    return min(row["disk"], row["edgeon_no"], row["spiral"])


def test_mistakes_hold_the_most_confident_and_the_most_disputed_with_their_votes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frame = votes_frame(4000, rng)
    labels = label_votes(VoteArrays.from_frame(frame), Labelling(threshold=0.6, min_classifications=0))
    keep = labels >= 0
    frame, labels = frame[keep].reset_index(drop=True), labels[keep]
    volunteers = volunteer_table(frame, labels)
    for i in range(0, len(frame), 97):
        expected = expected_agreement(frame.iloc[i], VOTE_CLASSES[labels[i]])
        assert volunteers["agreement"][i] == pytest.approx(expected, abs=1e-4)  # float32 votes, 4 decimals

    probabilities = rng.dirichlet(np.ones(3), len(frame)).astype(np.float32)
    images = rng.integers(0, 255, (len(frame), 16, 16, 3), dtype=np.uint8)
    write_results(tmp_path, VOTE_CLASSES, Measured(frame["id"].to_numpy(), labels, probabilities), 0.5, images,
                  np.arange(len(frame)), 5, {}, volunteers=volunteers)

    listing = pd.read_csv(tmp_path / "mistakes" / "mistakes.csv")
    wrong = probabilities.argmax(1) != labels
    confident = set(frame["id"][wrong].to_numpy()[np.argsort(-probabilities.max(1)[wrong], kind="stable")][:5])
    disputed = set(frame["id"][wrong].to_numpy()[np.argsort(volunteers["agreement"][wrong], kind="stable")][:5])
    assert set(listing["id"]) == confident | disputed and len(listing) == len(confident | disputed)
    assert list(listing["confidence"]) == sorted(listing["confidence"], reverse=True)
    assert all((tmp_path / "mistakes" / name).is_file() for name in listing["file"])
    assert {"votes_smooth", "votes_spiral", "votes_agreement", "votes_total_classifications"} <= set(listing.columns)

    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == len(frame)
    np.testing.assert_allclose(predictions["votes_agreement"], volunteers["agreement"])


def test_without_votes_the_lists_are_as_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 50)
    probabilities = rng.dirichlet(np.ones(3), 50)
    write_results(tmp_path, ("a", "b", "c"), Measured(np.arange(50), truth, probabilities), 0.5,
                  rng.integers(0, 255, (50, 8, 8, 3), dtype=np.uint8), np.arange(50), 3, {})
    listing = pd.read_csv(tmp_path / "mistakes" / "mistakes.csv")
    assert list(listing.columns) == ["file", "id", "true", "predicted", "confidence"]
    wrong = pd.DataFrame({"id": np.arange(50), "true": np.array(["a", "b", "c"])[truth],
                          "confidence": probabilities.max(1)})[probabilities.argmax(1) != truth]
    wrong = wrong.sort_values("confidence", ascending=False)
    expected = set(wrong["id"].head(3)) | set(wrong.groupby("true").head(1)["id"])  # 3 // 3 classes = 1 each
    assert set(listing["id"]) == expected and list(listing["confidence"]) == sorted(listing["confidence"],
                                                                                     reverse=True)


def test_a_rare_class_s_most_confident_errors_are_listed_beside_the_overall_ones(tmp_path: Path) -> None:
    truth = np.array([0] * 40 + [2] * 4)
    probabilities = np.tile([0.02, 0.96, 0.02], (44, 1))  # class a: 40 very sure errors
    probabilities[40:] = [0.45, 0.1, 0.45]  # class c: 4 unsure ones (argmax a), never in the overall top 6
    write_results(tmp_path, ("a", "b", "c"), Measured(np.arange(44), truth, probabilities), 0.5,
                  np.zeros((44, 8, 8, 3), dtype=np.uint8), np.arange(44), 6, {})
    listing = pd.read_csv(tmp_path / "mistakes" / "mistakes.csv")
    assert (listing["true"] == "c").sum() == 3 and (listing["true"] == "a").sum() == 6  # 6 // 2 classes of each
