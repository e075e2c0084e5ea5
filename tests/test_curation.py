"""Curation's parts, on arrays whose truth is known: exact neighbours, likely wrong labels, the odd ones out,
what to label next, a person's overrides, and the planted truth the demo's renderer can carry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.curation.embedding import unit_rows
from galaxy_tui.curation.heads import class_heads, fraction_heads
from galaxy_tui.curation.label_issues import class_label_issues, fraction_label_issues
from galaxy_tui.curation.label_next import entropy, fraction_disagreement, label_next
from galaxy_tui.curation.odd_ones import odd_ones
from galaxy_tui.curation.similar import nearest
from galaxy_tui.data.overrides import apply_overrides, read_overrides, record_decision
from galaxy_tui.data.synthetic import load_synthetic
from galaxy_tui.errors import GalaxyError

CLASSES = ("elliptical", "spiral", "edge_on")


def blobs(count: int, seed: int = 0, features: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, features))
    labels = rng.integers(0, 3, count)
    return centres[labels] + rng.normal(0, 1, (count, features)), labels


@pytest.mark.parametrize("chunk_rows", [7, 100, 10_000])
def test_nearest_is_exact_across_chunk_boundaries_and_leaves_the_galaxy_itself_out(chunk_rows: int) -> None:
    vectors = unit_rows(np.random.default_rng(1).standard_normal((503, 24)))
    queries = np.asarray(vectors[[0, 250, 502]], np.float32)
    rows, sims = nearest(vectors, queries, 10, skip_self=np.array([0, 250, 502]), chunk_rows=chunk_rows)
    full = queries @ np.asarray(vectors, np.float32).T
    for q, own in enumerate((0, 250, 502)):
        full[q, own] = -np.inf
        expected = np.argsort(-full[q], kind="stable")[:10]
        np.testing.assert_array_equal(np.sort(rows[q]), np.sort(expected))
        np.testing.assert_allclose(sims[q], full[q, rows[q]], rtol=1e-6)
        assert own not in rows[q] and (np.diff(sims[q]) <= 0).all()  # most similar first


def test_nearest_asked_for_more_than_there_are_returns_them_all() -> None:
    vectors = unit_rows(np.eye(4))
    rows, _ = nearest(vectors, np.eye(4)[0], 50, skip_self=np.array([0]))
    assert sorted(rows[0]) == [1, 2, 3]


def test_the_top_of_the_label_issue_ranking_holds_the_flipped_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing.pool

    def no_pool(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a process pool: forked from the worker's threads it can hang")
    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", no_pool)
    features, truth = blobs(1200)
    given = truth.copy()
    flipped = np.random.default_rng(2).choice(len(given), 60, replace=False)
    given[flipped] = (given[flipped] + 1) % 3
    heads = class_heads(features, given, 3, features[:10])
    issues = class_label_issues(np.array([f"g{i}" for i in range(len(given))]), given, heads.out_of_sample, CLASSES)
    top = set(issues["id"].head(60))
    assert len(top & {f"g{i}" for i in flipped}) >= 54  # 90% of the flips in the top 5%
    assert issues["quality"].is_monotonic_increasing and issues["rank"].tolist() == list(range(1, 1201))
    suggested = issues.set_index("id").loc[[f"g{i}" for i in flipped], "suggested"]
    assert (suggested == np.asarray(CLASSES)[truth[flipped]]).mean() > 0.9  # it suggests the true class
    called = issues[issues["issue"]]
    assert 40 <= len(called) <= 120  # cleanlab's own call: near the 60 planted


def test_fraction_issues_weigh_the_gap_by_the_votes_and_skip_missing_answers() -> None:
    volunteers = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, np.nan]])
    predicted = np.array([[0.2, 0.8], [0.2, 0.8], [0.5, 0.9]])
    ranked = fraction_label_issues(np.array(["few", "many", "unanswered"]), volunteers, predicted,
                                   np.array([4, 100, 50]), ("smooth", "features"))
    assert ranked["id"].tolist() == ["many", "few", "unanswered"]
    assert ranked.set_index("id").loc["many", "gap"] == pytest.approx(0.7 * 10)
    assert ranked.set_index("id").loc["unanswered", "gap"] == 0  # the NaN answer is not a disagreement


def test_fraction_heads_fit_through_missing_answers() -> None:
    features, truth = blobs(300, features=8)
    targets = np.stack([truth == 0, truth != 0], axis=1).astype(np.float32)
    targets[::7, 1] = np.nan
    heads = fraction_heads(features, targets, features[:5])
    assert np.isfinite(heads.out_of_sample).all() and heads.members.shape == (5, 5, 2)
    assert np.abs(heads.out_of_sample[:, 0] - (truth == 0)).mean() < 0.15


def test_the_odd_ones_are_the_far_ones() -> None:
    features, _ = blobs(2000, features=40)
    rng = np.random.default_rng(3)
    planted = rng.choice(2000, 10, replace=False)
    features[planted] = rng.normal(0, 4, (10, 40)) + 12 * rng.choice([-1, 1], (10, 40))
    ranked = odd_ones(np.array([f"g{i}" for i in range(2000)]), unit_rows(features))
    assert set(ranked["id"].head(40)) >= {f"g{i}" for i in planted}  # all in the top 2%
    assert ranked["odd"].is_monotonic_decreasing and ranked["odd"].between(0, 1).all()


def test_the_map_s_cursor_finds_the_galaxies_nearest_to_it_on_screen_scales() -> None:
    from galaxy_tui.app.curation_map import nearest_on_map
    layout = pd.DataFrame({"x": [0.0, 100.0, 0.0, 50.0], "y": [0.0, 0.0, 1.0, 0.5], "id": ["a", "b", "c", "d"]})
    found = nearest_on_map(layout, 0.0, 0.9, count=2)
    assert found["id"].tolist() == ["c", "d"]  # each axis by its spread, as the plot draws them: d is nearer than a
    assert found["distance"].is_monotonic_increasing


def test_bald_ranks_disagreeing_heads_above_agreeing_unsure_ones() -> None:
    agree_unsure = np.full((5, 1, 3), 1 / 3)
    disagree = np.eye(3)[[0, 1, 2, 0, 1]][:, None, :]
    agree_sure = np.tile([[0.98, 0.01, 0.01]], (5, 1))[:, None, :]
    members = np.concatenate([agree_unsure, disagree, agree_sure], axis=1)
    ranked = label_next(np.array(["unsure", "split", "sure"]), members, CLASSES)
    assert ranked["id"].tolist() == ["split", "unsure", "sure"]
    assert ranked.set_index("id").loc["unsure", "bald"] == pytest.approx(0, abs=1e-6)
    assert ranked.set_index("id").loc["unsure", "entropy"] == pytest.approx(np.log(3), rel=1e-4)
    assert entropy(np.array([1.0, 0.0])) == pytest.approx(0, abs=1e-9)
    spread = fraction_disagreement(np.array(["a", "b"]), np.array([[[0.5, 0.5], [0.1, 0.9]],
                                                                   [[0.5, 0.5], [0.9, 0.1]]]), ("x", "y"))
    assert spread["id"].tolist() == ["b", "a"] and spread["disagreement"].iloc[1] == 0


def test_overrides_keep_the_latest_decision_and_take_one_back_with_keep(tmp_path: Path) -> None:
    path = tmp_path / "overrides" / "demo.csv"
    record_decision(path, "a", "exclude", note="a star, not a galaxy")
    record_decision(path, "b", "relabel", "spiral")
    record_decision(path, "c", "exclude")
    record_decision(path, "c", "keep")
    record_decision(path, "b", "relabel", "edge_on", note='seen edge-on, "clearly"')
    decisions = read_overrides(path)
    assert decisions is not None and decisions.excluded == {"a"} and decisions.relabelled == {"b": "edge_on"}
    assert pd.read_csv(path).shape == (5, 5)  # every decision is kept, the latest holds
    ids = pd.Series(["a", "b", "c", "d"])
    labels, applied = apply_overrides(ids, np.array([0, 1, 2, -1]), CLASSES, decisions, "here")
    assert labels.tolist() == [-1, 2, 2, -1] and (applied.excluded, applied.relabelled) == (1, 1)
    before = decisions.digest
    record_decision(path, "d", "exclude")
    assert read_overrides(path).digest != before  # another decision: another configuration hash


def test_damaged_overrides_say_where_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    path.write_text("id,action,new_label,note,time\na,exclude,,,\nb,delete,,,\n")
    with pytest.raises(GalaxyError, match=r"demo.csv, line 3: action 'delete' is unknown"):
        read_overrides(path)
    path.write_text("galaxy,what\na,exclude\n")
    with pytest.raises(GalaxyError, match="no id or action column"):
        read_overrides(path)
    path.write_text("id,action,new_label\na,relabel,ring\n")
    with pytest.raises(GalaxyError, match="relabelled 'ring', which is not a class"):
        apply_overrides(pd.Series(["a"]), np.array([0]), CLASSES, read_overrides(path), "dataset demo")
    assert read_overrides(tmp_path / "none.csv") is None


def test_planted_truth_leaves_the_unplanted_demo_as_it_was() -> None:
    plain = load_synthetic("demo", 2000, 32, 5)
    planted = load_synthetic("demo", 2000, 32, 5, mislabel=0.05, rare=0.01)
    assert plain.fingerprint == load_synthetic("demo", 2000, 32, 5).fingerprint != planted.fingerprint
    marks = planted.frame["_planted"]
    assert 0.03 < (marks == "mislabelled").mean() < 0.07 and 0.005 < (marks == "rare").mean() < 0.02
    untouched = (marks == "").to_numpy()
    columns = ["smooth", "disk", "spiral", "edgeon_yes", "_kind"]
    pd.testing.assert_frame_equal(plain.frame.loc[untouched, columns], planted.frame.loc[untouched, columns])
    flipped = (marks == "mislabelled").to_numpy()
    assert (plain.frame.loc[flipped, "smooth"].to_numpy() != planted.frame.loc[flipped, "smooth"].to_numpy()).all()
    rare = np.flatnonzero(marks == "rare")
    assert set(planted.frame["true_type"].iloc[rare]) == {"ring", "merger"}
    assert not np.array_equal(plain.read_image(int(rare[0])), planted.read_image(int(rare[0])))


def test_the_umap_map_when_installed_and_the_message_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """UMAP is an optional extra (the test extra installs it); without it the map says what to install."""
    import sys

    from galaxy_tui.curation.map2d import pca_map, umap_map
    features, labels = blobs(300, features=12)
    vectors = unit_rows(features)
    flat = pca_map(vectors)
    assert flat.shape == (300, 2) and np.isfinite(flat.to_numpy()).all()
    try:
        import umap  # noqa: F401
    except ImportError:
        pytest.skip("umap-learn is not installed here")
    layout = umap_map(vectors)
    assert layout.shape == (300, 2) and np.isfinite(layout.to_numpy()).all()
    centres = np.stack([layout[labels == k].mean().to_numpy() for k in range(3)])
    spread = np.mean([layout[labels == k].std().mean() for k in range(3)])
    assert np.min([np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]]) > 2 * spread
    monkeypatch.setitem(sys.modules, "umap", None)  # as where the extra is not installed
    with pytest.raises(GalaxyError, match=r"pip install 'galaxy-tui\[umap\]'"):
        umap_map(vectors)


def test_a_list_printed_in_a_narrow_terminal_keeps_every_figure_whole() -> None:
    from rich.console import Console

    from galaxy_tui.cli.tables import whole_table
    columns = ["rank", "id", "neighbour", "isolation", "odd", "concentration", "size", "asymmetry", "gini", "m20"]
    rows = [[str(k), f"syn2-00{k:04d}", "11.14378", "0.68237", "0.99967", "1.0016", "-1.5263", "-0.0674",
             "0.3371", "-0.7785"] for k in range(1, 4)]
    for width in (60, 80, 200):
        console = Console(width=width, record=True, color_system=None)
        console.print(whole_table("the odd ones out", columns, rows, width))
        lines = console.export_text().splitlines()
        assert all(len(line) <= width for line in lines) and "…" not in "".join(lines)
        header = lines[1].split()
        shown = len(header) - (1 if header[-1].endswith("→") else 0)
        assert header[:shown] == columns[:shown] and (shown == len(columns) or header[-1] == f"+{10 - shown}→")
        assert all(value in lines[3 + k] for k, row in enumerate(rows) for value in row[:shown])
