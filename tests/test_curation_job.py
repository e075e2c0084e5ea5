"""The curate job in real processes, as a user runs it: a tiny run's galaxies embedded (the labelled ones and
those its labelling rule left out) and ranked; `similar`, `curation` and `override` through the CLI; a stopped
embedding continued where it stopped; overrides entering the next run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.curation.embedding import read_embedding
from galaxy_tui.curation.morphology import MEASURED_BY
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import RunInfo, curate_run, launch
from workspace_fixture import tiny_workspace, wait_final


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunInfo]:
    root = tmp_path_factory.mktemp("curation")
    registry = tiny_workspace(root, epochs=1)
    run = wait_final(launch(registry, "tiny"))
    assert run.state == "finished", (run.dir / "worker.log").read_text()
    done = cli(root, "curate", run.id)
    assert done.returncode == 0, done.stdout + done.stderr + (run.dir / "worker.log").read_text()[-3000:]
    return root, run


def test_curate_embeds_every_galaxy_of_the_dataset_and_ranks_them(curated) -> None:  # noqa: ANN001
    root, run = curated
    embedding = read_embedding(run.dir)
    split = pd.read_csv(run.dir / "split.csv", dtype={"id": str})
    assert embedding.vectors.dtype == np.float16 and len(embedding.vectors) == 400  # the whole demo dataset
    np.testing.assert_allclose(np.linalg.norm(np.asarray(embedding.vectors, np.float32), axis=1), 1, atol=2e-3)
    parts = embedding.galaxies.set_index("id")["part"]
    assert (parts.loc[split["id"]].to_numpy() == split["split"].to_numpy()).all()
    left_out = embedding.galaxies[embedding.galaxies["part"] == "left-out"]
    assert len(left_out) == 400 - len(split) > 0 and (left_out["label"] == "").all()
    folder = run.dir / "curation"
    issues = pd.read_csv(folder / "label_issues.csv", dtype={"id": str})
    assert sorted(issues["id"]) == sorted(split["id"]) and issues["quality"].is_monotonic_increasing
    nexts = pd.read_csv(folder / "label_next.csv", dtype={"id": str})
    assert sorted(nexts["id"]) == sorted(left_out["id"])
    odd = pd.read_csv(folder / "odd_ones.csv", dtype={"id": str})
    assert {"neighbour", "isolation", "odd", "concentration", "ring_rise", "second_peak"} <= set(odd.columns)
    assert np.load(folder / "morphology.npy").shape == (400, 8)  # measured on every galaxy's pixels
    layout = pd.read_csv(folder / "map.csv", dtype={"id": str})
    assert len(odd) == len(layout) == 400 and np.isfinite(layout[["x", "y"]].to_numpy()).all()
    summary = read_json(folder / "summary.json")
    assert summary["labelled"] == len(split) and summary["folds"] == 5 and summary["label_issues"] >= 0
    assert summary["morphology"] is True
    assert (read_json(run.dir / "status.json") or {})["state"] == "finished"
    assert (run.dir / "results" / "metrics.json").exists()  # the run's own results stay


def test_similar_galaxies_from_the_cli_by_id_and_by_image_file(curated, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = curated
    embedding = read_embedding(run.dir)
    asked = embedding.ids[0]
    done = cli(root, "similar", run.id, asked, "-k", "5")
    assert done.returncode == 0, done.stderr
    found = pd.read_csv(pd.io.common.StringIO(done.stdout), sep="\t", dtype={"id": str})
    vectors = np.asarray(embedding.vectors, np.float32)
    sims = vectors @ vectors[0]
    sims[0] = -np.inf
    assert asked not in set(found["id"]) and len(found) == 5
    np.testing.assert_allclose(found["similarity"], np.sort(sims)[::-1][:5], atol=1e-3)
    from galaxy_tui.data.sources import load_dataset
    registry = load_registry(root / "experiments.toml")
    dataset = load_dataset(registry.dataset("tiny"), registry.cache_dir)
    from PIL import Image
    image = tmp_path / "asked.png"
    Image.fromarray(dataset.read_image(int(dataset.frame["ref"].iloc[0]))).save(image)
    by_file = cli(root, "similar", run.id, str(image), "-k", "3")
    assert by_file.returncode == 0, by_file.stderr
    assert pd.read_csv(pd.io.common.StringIO(by_file.stdout), sep="\t", dtype={"id": str})["id"].iloc[0] == asked
    missing = cli(root, "similar", run.id, "no-such-galaxy")
    assert missing.returncode == 2 and "not in this run's embedding" in missing.stderr


def test_the_lists_print_and_export_with_their_files(curated, tmp_path: Path) -> None:  # noqa: ANN001
    root, run = curated
    printed = cli(root, "curation", run.id, "issues", "-n", "3")
    assert printed.returncode == 0 and len(printed.stdout.strip().splitlines()) == 4  # a header and 3 galaxies
    out = tmp_path / "next.csv"
    assert cli(root, "curation", run.id, "next", "--csv", str(out)).returncode == 0
    exported = pd.read_csv(out, dtype={"id": str})
    assert {"rank", "id", "entropy", "bald", "file"} <= set(exported.columns)


async def test_the_workbench_shows_the_lists_and_keeps_decisions_in_the_overrides_file(curated) -> None:  # noqa: ANN001
    """As a person would: Results, `u`, the label issues as tiles; x, m 2, k on the first galaxy; ] to the next
    list; s for the galaxies most like one."""
    from galaxy_tui.app.curation_view import CurationScreen
    from galaxy_tui.app.dialogs import ChoiceDialog
    from galaxy_tui.app.gallery import GalaxyTile, TileCaption
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.data.overrides import read_overrides
    from pilot_helpers import NoGpu, screen_text, until
    root, run = curated
    first = pd.read_csv(run.dir / "curation" / "label_issues.csv", dtype={"id": str})["id"].iloc[0]
    overrides = root / "overrides" / "tiny.csv"
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.store.records) >= 1)
        await pilot.press("4", "u")
        await until(pilot, lambda: isinstance(app.screen, CurationScreen) and len(app.screen.query(GalaxyTile)) > 0)
        assert "Likely wrong labels" in screen_text(app) and "→" in screen_text(app)
        await pilot.press("x")
        await until(pilot, lambda: overrides.exists() and "✗" in screen_text(app))
        assert read_overrides(overrides).excluded == {first}
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("2")
        await until(pilot, lambda: (read_overrides(overrides) or None) is not None
                    and read_overrides(overrides).relabelled == {first: "spiral"})
        await pilot.press("k")
        await until(pilot, lambda: read_overrides(overrides) is None)  # taken back: the catalogue's label holds
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "Label these next" in screen_text(app))
        await pilot.press("s")
        await until(pilot, lambda: "Like " in screen_text(app) and len(app.screen.query(GalaxyTile)) > 0)
        await pilot.press("enter")
        await until(pilot, lambda: "similarity" in screen_text(app))
        await pilot.press("escape", "escape")
        await until(pilot, lambda: "Label these next" in screen_text(app))
        await pilot.press("p")
        await until(pilot, lambda: "the map (PCA)" in screen_text(app) and "elliptical" in screen_text(app))
        await pilot.press("c")  # coloured by the volunteers' smooth fraction
        await until(pilot, lambda: "smooth 0.8-1.0" in screen_text(app))
        await pilot.press("left", "enter")
        await until(pilot, lambda: "Near the map at" in screen_text(app) and len(app.screen.query(GalaxyTile)) > 0)
        await pilot.press("escape", "escape")  # the galaxies near that point, then the map
        await until(pilot, lambda: "Label these next" in screen_text(app))
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "The odd ones out" in screen_text(app) and len(app.screen.query(GalaxyTile)) > 0)
        shown = len(app.screen.query(GalaxyTile))
        odd = pd.read_csv(run.dir / "curation" / "odd_ones.csv", dtype={"id": str}, keep_default_na=False).head(shown)
        assert odd["stands_out"].str.len().gt(0).any()  # some of the oddest stand out in a statistic
        for row in odd.itertuples():  # each tile says why it is odd, where a statistic can
            assert (f"{row.stands_out} · " if row.stands_out else "") + f"odd {row.odd:.3f}" in screen_text(app)
        await pilot.press("Z", "Z", "Z", "Z")  # the smallest tiles: a caption too long keeps its leading parts whole
        await until(pilot, lambda: "(15 px)" in screen_text(app))
        await pilot.pause(0.3)
        for tile in app.screen.query(GalaxyTile):
            shown_caption = tile.query_one(TileCaption).render().plain
            assert tile.caption.startswith(shown_caption) and len(shown_caption) <= tile.size.width
            assert tile.caption[len(shown_caption):][:1] in ("", " ")  # whole words: "colour_gradient", never cut
            assert not shown_caption.endswith(("·", " ")) and shown_caption
    overrides.unlink()


async def test_s_shows_similar_galaxies_from_the_gallery_and_a_mistake(curated) -> None:  # noqa: ANN001
    from galaxy_tui.app.gallery import GalaxyTile, GalaxyView, GalleryScreen
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.app.panes.mistakes_grid import MistakeCell
    from galaxy_tui.app.thumbs import ThumbnailStrip
    from pilot_helpers import NoGpu, screen_text, until
    root, run = curated
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.query_one(ThumbnailStrip).shown == "tiny")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, GalleryScreen) and len(app.screen.query(GalaxyTile)) > 0)
        first = app.screen.entries()[0][1]
        await pilot.press("s")
        await until(pilot, lambda: f"Like {first}" in screen_text(app))
        await pilot.press("escape", "escape", "4", "m")
        await until(pilot, lambda: len(app.query(MistakeCell)) > 0)
        app.query(MistakeCell).first().focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView))
        mistake = app.screen.galaxies[app.screen.index].galaxy_id
        await pilot.press("s")
        await until(pilot, lambda: f"Like {mistake}" in screen_text(app))


async def test_s_on_a_classified_image_finds_the_run_s_galaxies_like_it(curated, tmp_path: Path) -> None:  # noqa: ANN001
    """A galaxy of the dataset saved as a file and classified with `p`: the predict job keeps its features, and
    `s` on it finds that very galaxy first."""
    from PIL import Image
    from textual.widgets import Input

    from galaxy_tui.app.curation_view import CurationScreen
    from galaxy_tui.app.gallery import GalaxyView
    from galaxy_tui.app.main import GalaxyApp
    from galaxy_tui.data.sources import load_dataset
    from pilot_helpers import NoGpu, open_predict_dialog, screen_text, until
    root, run = curated
    registry = load_registry(root / "experiments.toml")
    dataset = load_dataset(registry.dataset("tiny"), registry.cache_dir)
    folder = tmp_path / "files"
    folder.mkdir()
    asked = str(dataset.frame["id"].iloc[7])
    Image.fromarray(dataset.read_image(int(dataset.frame["ref"].iloc[7]))).save(folder / "asked.png")
    app = GalaxyApp(root, telemetry=NoGpu())
    async with app.run_test(size=(100, 30)) as pilot:
        await open_predict_dialog(app, pilot, run.id)
        app.screen.query_one("#predict-path", Input).value = str(folder)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GalaxyView), timeout=120)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, CurationScreen) and "Like asked.png" in screen_text(app))
        assert app.screen.galaxy_ids()[0] == asked


def test_a_stopped_embedding_continues_where_it_stopped(curated) -> None:  # noqa: ANN001
    """What a stop mid-job leaves (the partial file and how far it got) is planted from the finished embedding,
    the rows after the stop point spoilt: the next curate keeps the rows before it and recomputes the rest. Morphology
    saved by an older version of its measure is measured again; by this version, it is kept."""
    root, run = curated
    folder = run.dir / "curation"
    finished = np.load(folder / "embedding.npy")
    partial = finished.copy()
    partial[:100] = 0  # marks: rows the continued job must not compute again
    partial[100:] = np.nan  # rows it must
    np.save(folder / "embedding.partial.npy", partial)
    galaxies = pd.read_csv(folder / "galaxies.csv", dtype={"id": str}, keep_default_na=False)
    digest = str(pd.util.hash_pandas_object(galaxies["id"], index=False).sum())
    atomic_write_json(folder / "embedding.partial.json", {"rows": 100, "galaxies": 400, "ids": digest})
    (folder / "embedding.npy").unlink()
    measured = np.load(folder / "morphology.npy")  # and statistics saved by an older measure: measured again
    assert read_json(folder / "morphology.json") == {"galaxies": 400, "ids": digest, "measured_by": MEASURED_BY}
    np.save(folder / "morphology.npy", np.zeros_like(measured))
    atomic_write_json(folder / "morphology.json", {"galaxies": 400, "ids": digest, "measured_by": "1"})
    again = wait_final(curate_run(load_registry(root / "experiments.toml"), run.id, chunk=50))
    assert again.state == "finished", (run.dir / "worker.log").read_text()[-2000:]
    continued = np.load(folder / "embedding.npy")
    assert (continued[:100] == 0).all()
    np.testing.assert_allclose(continued[100:].astype(np.float32), finished[100:].astype(np.float32), atol=2e-3)
    assert not (folder / "embedding.partial.npy").exists() and not (folder / "embedding.partial.json").exists()
    np.testing.assert_allclose(np.load(folder / "morphology.npy"), measured, atol=1e-5)
    assert read_json(folder / "morphology.json")["measured_by"] == MEASURED_BY
    np.save(folder / "morphology.npy", np.zeros_like(measured))  # this measure's own: kept by a curate --again
    assert cli(root, "curate", run.id, "--again").returncode == 0  # and the embedding made whole again from scratch
    np.testing.assert_allclose(np.load(folder / "embedding.npy").astype(np.float32), finished.astype(np.float32),
                               atol=2e-3)
    assert (np.load(folder / "morphology.npy") == 0).all()
    np.save(folder / "morphology.npy", measured)


def test_overrides_enter_the_next_run_and_its_record(curated) -> None:  # noqa: ANN001
    root, run = curated
    issues = pd.read_csv(run.dir / "curation" / "label_issues.csv", dtype={"id": str})
    excluded, relabelled = issues["id"].iloc[0], issues["id"].iloc[1]
    new_class = issues["suggested"].iloc[1]
    assert cli(root, "override", "tiny", excluded, "exclude", "--note", "a star").returncode == 0
    assert cli(root, "override", "tiny", relabelled, "relabel", new_class).returncode == 0
    wrong = cli(root, "override", "tiny", relabelled, "relabel", "ring")
    assert wrong.returncode == 2 and "not a class of dataset 'tiny'" in wrong.stderr
    resumed = cli(root, "train", "tiny", "--resume")
    assert resumed.returncode == 2 and "overrides" in resumed.stderr
    fresh = cli(root, "train", "tiny", "--restart")
    assert fresh.returncode == 0, fresh.stderr
    new = sorted(path for path in (root / "runs").iterdir()
                 if path.name != run.id and path.name.startswith("tiny-"))[-1]
    split = pd.read_csv(new / "split.csv", dtype={"id": str})
    assert excluded not in set(split["id"]) and relabelled in set(split["id"])
    record = read_json(new / "manifest.json")["attempts"][-1]["dataset"]["overrides"]
    assert (record["excluded"], record["relabelled"]) == (1, 1)
    shown = cli(root, "show", new.name)
    assert "overrides applied: 1 galaxy excluded, 1 relabelled" in shown.stdout
    assert (new / "overrides.csv").read_text() == (root / "overrides" / "tiny.csv").read_text()


def test_a_vote_fraction_run_ranks_by_the_gap_between_volunteers_and_model(fraction_run) -> None:  # noqa: ANN001
    root, run = fraction_run
    done = cli(root, "curate", run.id)
    assert done.returncode == 0, done.stdout + done.stderr + (run.dir / "worker.log").read_text()[-3000:]
    folder = run.dir / "curation"
    issues = pd.read_csv(folder / "label_issues.csv", dtype={"id": str})
    assert {"answer", "volunteers", "model", "gap"} <= set(issues.columns) and issues["gap"].is_monotonic_decreasing
    assert read_json(folder / "summary.json")["heads"] == "ridge regression"
    nexts = pd.read_csv(folder / "label_next.csv", dtype={"id": str})
    assert len(nexts) == read_json(folder / "summary.json")["left_out"] and "disagreement" in nexts.columns
