"""The high-confidence labelling rule, as a pure function."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galaxy_tui.data.labels import (
    EDGE_ON,
    ELLIPTICAL,
    SPIRAL,
    UNLABELLED,
    VoteArrays,
    class_counts,
    empty_class_warning,
    label_votes,
)
from galaxy_tui.registry import Labelling


def votes(**columns: list[float]) -> VoteArrays:
    base = dict(smooth=[0.0], disk=[0.0], artifact=[0.0], edgeon_yes=[0.0], edgeon_no=[0.0], spiral=[0.0],
                total_classifications=[40])
    base.update(columns)
    return VoteArrays.from_frame(pd.DataFrame(base))


def test_each_rule_and_its_boundary() -> None:
    rule = Labelling(0.8, 10, 0.5)
    assert label_votes(votes(smooth=[0.8]), rule)[0] == ELLIPTICAL
    assert label_votes(votes(smooth=[0.79]), rule)[0] == UNLABELLED
    assert label_votes(votes(disk=[0.8], edgeon_yes=[0.8]), rule)[0] == EDGE_ON
    assert label_votes(votes(disk=[0.8], edgeon_no=[0.8], spiral=[0.8]), rule)[0] == SPIRAL
    assert label_votes(votes(disk=[0.8], edgeon_no=[0.8], spiral=[0.7]), rule)[0] == UNLABELLED
    assert label_votes(votes(disk=[0.7], edgeon_yes=[0.95]), rule)[0] == UNLABELLED


def test_vote_count_and_artifact_cuts() -> None:
    rule = Labelling(0.8, 10, 0.5)
    assert label_votes(votes(smooth=[0.9], total_classifications=[9]), rule)[0] == UNLABELLED
    assert label_votes(votes(smooth=[0.9], total_classifications=[10]), rule)[0] == ELLIPTICAL
    assert label_votes(votes(smooth=[0.9], artifact=[0.5]), rule)[0] == UNLABELLED
    assert label_votes(votes(smooth=[0.9], total_classifications=[float("nan")]), rule)[0] == ELLIPTICAL


def test_counts_move_with_the_threshold_and_empty_class_is_warned() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    smooth = rng.random(n)
    table = VoteArrays.from_frame(pd.DataFrame(dict(
        smooth=smooth, disk=1 - smooth, artifact=np.zeros(n), edgeon_yes=rng.random(n),
        edgeon_no=rng.random(n), spiral=rng.random(n), total_classifications=np.full(n, 30))))
    low = class_counts(label_votes(table, Labelling(0.6, 10, 0.5)), ("e", "s", "o"))
    high = class_counts(label_votes(table, Labelling(0.95, 10, 0.5)), ("e", "s", "o"))
    assert all(high[k] < low[k] for k in low)
    assert empty_class_warning({"e": 3, "s": 0, "o": 1}, "gz2") == (
        "gz2: class s has no galaxies at this labelling (e=3, s=0, o=1); lower the threshold or min_classifications.")
    assert empty_class_warning(low, "gz2") is None
