"""Files hosted on Zenodo, fetched from a loopback server shaped like it: `records/ID/files/NAME` for the files and
`api/records/ID` for the record (pooch's ZenodoRepository reads its md5s there; its API address is pointed at the
server). GZ DECaLS (GZD-5) in its published layout: the volunteers' table with counts, fractions and debiased
fractions, and four zips of <iauname>.png cut-outs in J### folders."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pooch.downloaders import ZenodoRepository

from galaxy_tui.data.detect import detect_dataset
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.data.vote_tree import DECALS5_QUESTIONS
from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching import fetch as fetching
from galaxy_tui.fetching.sources import SOURCES
from galaxy_tui.registry import load_registry

RECORD = "4573248"
KINDS = ((0.85, 0.1, 0.05), (0.1, 0.85, 0.05), (0.05, 0.9, 0.05))  # smooth, face-on disc, edge-on disc


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def decals_catalogue(count: int, rng: np.random.Generator) -> pd.DataFrame:
    """GZD-5's columns: iauname, ra, dec, and per question {q}_total-votes, {q}_{a} (counts), _fraction,
    _debiased (NaN where no volunteer reached the question)."""
    rows = []
    for k in range(count):
        kind = k % 3
        ra, dec = 10 + k * 0.5, -5 + k * 0.1
        row: dict[str, object] = {"iauname": f"J{int(ra // 15):03d}{k:03d}.00+0{k % 10}0000.0", "ra": ra, "dec": dec}
        reach = {"smooth-or-featured": 40}
        for key, _, answers, parent in DECALS5_QUESTIONS:
            total = reach.get(key, 0) if parent is None or parent[0] in reach else 0
            if key == "merging":
                total = 40
            shares = np.array(KINDS[kind] if key == "smooth-or-featured" else
                              [0.9 if kind == 2 else 0.1, 0.1 if kind == 2 else 0.9] if key == "disk-edge-on" else
                              rng.dirichlet(np.ones(len(answers))))
            counts = np.floor(shares * total).astype(int)
            counts[0] += total - counts.sum()
            row[f"{key}_total-votes"] = total
            for answer, count_ in zip(answers, counts):
                row[f"{key}_{answer}"] = count_
                row[f"{key}_{answer}_fraction"] = count_ / total if total else np.nan
                row[f"{key}_{answer}_debiased"] = count_ / total if total else np.nan
            for child_key, _, _, child_parent in DECALS5_QUESTIONS:
                if child_parent and child_parent[0] == key:
                    reach[child_key] = int(counts[child_parent[1]])
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def zenodo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, pd.DataFrame]]:
    """GZD-5 on a Zenodo-shaped loopback server, the gz-decals5 source pointed at it, and the record's md5s."""
    rng = np.random.default_rng(0)
    served = tmp_path / "zenodo"
    files = served / "records" / RECORD / "files"
    files.mkdir(parents=True)
    catalogue = decals_catalogue(24, rng)
    catalogue.to_csv(files / "gz_decals_volunteers_5.csv", index=False)
    names = list(catalogue["iauname"])
    for part in range(1, 5):
        with zipfile.ZipFile(files / f"gz_decals_dr5_png_part{part}.zip", "w") as archive:
            for name in names[(part - 1) * 6:part * 6]:
                image = tmp_path / "image.png"
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
                archive.write(image, f"{name[:4]}/{name}.png")
    listing = [{"key": path.name, "size": path.stat().st_size,
                "checksum": f"md5:{hashlib.md5(path.read_bytes()).hexdigest()}"} for path in sorted(files.iterdir())]
    (served / "api" / "records").mkdir(parents=True)
    (served / "api" / "records" / RECORD).write_text(json.dumps({"files": listing}))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setattr(ZenodoRepository, "base_api_url", f"{url}/api/records")
    source = SOURCES["gz-decals5"]
    monkeypatch.setitem(SOURCES, "gz-decals5", replace(source, files=tuple(
        replace(file, url=f"{url}/records/{RECORD}/files/{file.name}") for file in source.files)))
    yield served, catalogue
    httpd.shutdown()


def no_progress(*_: object) -> None:
    pass


def test_gz_decals5_is_fetched_checked_against_zenodo_s_md5s_and_trains(zenodo: tuple[Path, pd.DataFrame],
                                                                        tmp_path: Path) -> None:
    _, catalogue = zenodo
    workspace = tmp_path / "ws"
    fetched = fetching.fetch(workspace, "gz-decals5", None, None, no_progress)
    assert sorted(p.name for p in fetched.folder.iterdir()) == ["SOURCE.json", "gz_decals_volunteers_5.csv",
                                                                 "images"]
    assert len(list((fetched.folder / "images").iterdir())) == 24  # the four parts in one folder
    provenance = json.loads((fetched.folder / "SOURCE.json").read_text())["files"]
    assert len(provenance) == 5 and all(entry["checked"] and entry["published_checksum"].startswith("md5:")
                                        for entry in provenance.values())
    registry = load_registry(workspace / "experiments.toml")
    dataset = load_dataset(registry.dataset("gz-decals5"), registry.cache_dir)
    assert dataset.kind == "gz-decals5" and len(dataset.frame) == 24 and not dataset.problems
    assert dataset.tree is not None and dataset.tree.has_counts and len(dataset.tree.questions) == 10
    assert list(dataset.frame["id"]) == list(catalogue["iauname"]) and {"ra", "dec"} <= set(dataset.frame)
    targets, counts = dataset.answers(dataset.frame.iloc[:3], dataset.tree)
    assert targets.shape == (3, 34) and counts is not None and counts[0, :3].sum() == 40
    with open(workspace / "experiments.toml", "a") as toml:
        toml.write('\n[experiments.decals]\ndataset = "gz-decals5"\nmodel = "tiny-cnn"\nimage_size = 32\nepochs = 1\n'
                   'micro_batch = 8\neffective_batch = 8\nmistakes = 0\ntask = "vote-fractions"\n'
                   'loss = "dirichlet-multinomial"\n')
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), "train", "decals"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and ": finished" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_file_unlike_zenodo_s_md5_is_removed_and_said(zenodo: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    served, _ = zenodo
    record = served / "api" / "records" / RECORD
    listing = json.loads(record.read_text())
    catalogue_entry = next(entry for entry in listing["files"] if entry["key"].endswith(".csv"))
    catalogue_entry["checksum"] = "md5:" + "0" * 32  # as if Zenodo published another file
    record.write_text(json.dumps(listing))
    with pytest.raises(GalaxyError, match=r"gz_decals_volunteers_5.csv does not match its published checksum "
                                          r"\(md5 0{32}\); the bad download was removed"):
        fetching.fetch(tmp_path / "ws", "gz-decals5", None, None, no_progress)
    assert not (tmp_path / "ws" / "data" / ".gz-decals5.partial" / "gz_decals_volunteers_5.csv").exists()


def test_without_zenodo_s_api_the_files_are_fetched_and_said_unchecked(zenodo: tuple[Path, pd.DataFrame],
                                                                       tmp_path: Path) -> None:
    served, _ = zenodo
    (served / "api" / "records" / RECORD).unlink()  # the API answers 404
    fetched = fetching.fetch(tmp_path / "ws", "gz-decals5", None, None, no_progress)
    provenance = json.loads((fetched.folder / "SOURCE.json").read_text())["files"]
    assert not any(entry["checked"] for entry in provenance.values())
    assert all(len(entry["sha256"]) == 64 for name, entry in provenance.items() if name.endswith(".csv"))


def test_a_gz_decals_catalogue_with_its_j_folders_beside_is_recognised(tmp_path: Path) -> None:
    catalogue = decals_catalogue(6, np.random.default_rng(1))
    catalogue.to_csv(tmp_path / "gz_decals_volunteers_5.csv", index=False)
    for name in catalogue["iauname"]:
        (tmp_path / "png" / name[:4]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20)).save(tmp_path / "png" / name[:4] / f"{name}.png")
    table = detect_dataset(Path("gz_decals_volunteers_5.csv"), tmp_path)
    assert table == {"kind": "gz-decals5", "catalog": "gz_decals_volunteers_5.csv", "images": "png"}
    from galaxy_tui.data.gz_decals import load_gz_decals5
    dataset = load_gz_decals5("d", tmp_path / "gz_decals_volunteers_5.csv", tmp_path / "png", "debiased")
    assert len(dataset.frame) == 6 and dataset.frame["ref"].iloc[0].count("/") == 1
    assert dataset.read_image(dataset.frame["ref"].iloc[0]).shape == (20, 20, 3)
    gone = catalogue["iauname"].iloc[2]
    (tmp_path / "png" / gone[:4] / f"{gone}.png").unlink()
    fewer = load_gz_decals5("d", tmp_path / "gz_decals_volunteers_5.csv", tmp_path / "png")
    assert len(fewer.frame) == 5 and "1 of 6 catalogue rows have no image" in fewer.problems[0]
    assert f"{gone}.png" in fewer.problems[0]
    with pytest.raises(GalaxyError, match="fractions = 'weighted'"):
        load_gz_decals5("d", tmp_path / "gz_decals_volunteers_5.csv", tmp_path / "png", "weighted")
