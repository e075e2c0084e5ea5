"""`galaxy-tui fetch`, without the internet: a loopback HTTP server on 127.0.0.1 (and a mirror folder) serves small
files in each source's real layout — an .h5 in Galaxy10's, GalaxyMNIST's two gzipped .hdf5 — and the sources'
checksums are the test files' own where a test needs them to match."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pooch
import pytest

from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching import fetch as fetching
from galaxy_tui.fetching.sources import SOURCES
from galaxy_tui.registry import load_registry


class Logged(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        Logged.requests.append(f"{self.command} {self.path}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (GET and HEAD with Content-Length, as a real one) over a folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    Logged.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Logged, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder
    httpd.shutdown()


def galaxy10_file(folder: Path, count: int = 60) -> Path:
    path = folder / "Galaxy10_DECals.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 255, (count, 32, 32, 3), dtype=np.uint8)
        f["ans"] = np.arange(count) % 10
    return path


def galaxy_mnist_files(folder: Path, scale: int = 1) -> None:
    for part, count in (("train", 40 * scale), ("test", 12 * scale)):
        raw = folder / f"{part}_dataset.hdf5"
        with h5py.File(raw, "w") as f:
            f["images"] = np.random.default_rng(count).integers(0, 255, (count, 24, 24, 3), dtype=np.uint8)
            f["labels"] = (np.arange(count) % 4).astype(np.uint8)
        (folder / f"{raw.name}.gz").write_bytes(gzip.compress(raw.read_bytes()))
        raw.unlink()


def with_hash(monkeypatch: pytest.MonkeyPatch, name: str, path: Path) -> None:
    """The source's published checksum, as the test file's own."""
    source = SOURCES[name]
    files = tuple(replace(file, sha256=pooch.file_hash(str(path))) for file in source.files)
    monkeypatch.setitem(SOURCES, name, replace(source, files=files))


def no_progress(*_: object) -> None:
    pass


@pytest.mark.slow
def test_a_fetch_from_a_mirror_url_registers_a_dataset_that_trains(server: tuple[str, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = server
    with_hash(monkeypatch, "galaxy10-decals", galaxy10_file(served))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "experiments.toml").write_text("# mine\n[workspace]\nruns_dir = \"runs\"\n")
    fetched = fetching.fetch(workspace, "galaxy10-decals", None, url, no_progress)
    assert fetched.registered and (workspace / "data" / "galaxy10-decals" / "Galaxy10_DECals.h5").is_file()
    assert not (workspace / "data" / ".galaxy10-decals.partial").exists()
    assert "HEAD /Galaxy10_DECals.h5" in Logged.requests[0]  # the size was asked before the first byte
    text = (workspace / "experiments.toml").read_text()
    assert text.startswith("# mine") and 'path = "data/galaxy10-decals/Galaxy10_DECals.h5"' in text
    registry = load_registry(workspace / "experiments.toml")
    assert registry.dataset("galaxy10-decals").kind == "galaxy10-h5"
    with open(workspace / "experiments.toml", "a") as toml:
        toml.write('\n[experiments.g10]\ndataset = "galaxy10-decals"\nmodel = "tiny-cnn"\nimage_size = 32\n'
                   'epochs = 1\nmicro_batch = 8\neffective_batch = 16\nmistakes = 0\n')
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(workspace), "train", "g10"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and ": finished" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    monkeypatch.setattr(fetching.pooch, "file_hash", lambda *_a, **_k: pytest.fail("hashed again"))
    again = fetching.fetch(workspace, "galaxy10-decals", None, url, no_progress)
    assert not again.registered and again.folder == fetched.folder  # fetched already: left as it is
    assert again.sha256 == fetched.sha256  # as SOURCE.json recorded it, not hashed again


def test_galaxy_mnist_from_a_mirror_folder_is_unpacked_and_registered(tmp_path: Path) -> None:
    mirror = tmp_path / "usb"
    mirror.mkdir()
    galaxy_mnist_files(mirror)
    workspace = tmp_path / "ws"
    fetched = fetching.fetch(workspace, "galaxy-mnist", tmp_path / "big-disk", str(mirror), no_progress)
    assert sorted(p.name for p in fetched.folder.iterdir()) == ["SOURCE.json", "test_dataset.hdf5",
                                                                 "train_dataset.hdf5"]
    spec = load_registry(workspace / "experiments.toml").dataset("galaxy-mnist")
    assert spec.kind == "galaxy-mnist-h5"
    with h5py.File(fetched.folder / "train_dataset.hdf5") as f:
        assert f["images"].shape == (40, 24, 24, 3)


def test_a_checksum_mismatch_removes_the_download_and_says_so(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    galaxy10_file(served)  # not the published file: its sha256 differs
    with pytest.raises(GalaxyError, match="does not match its published checksum.*removed"):
        fetching.fetch(tmp_path, "galaxy10-decals", None, url, no_progress)
    partial_folder = tmp_path / "data" / ".galaxy10-decals.partial"
    assert not (tmp_path / "data" / "galaxy10-decals").exists()
    assert not any(partial_folder.iterdir()) if partial_folder.exists() else True


def test_too_little_disk_is_refused_before_the_first_byte(server: tuple[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = server
    size = galaxy10_file(served).stat().st_size
    monkeypatch.setattr(fetching.shutil, "disk_usage", lambda _p: type("Usage", (), {"free": size // 2})())
    with pytest.raises(GalaxyError, match=r"GB free and the fetch needs .* GB are missing; free some or fetch with"):
        fetching.fetch(tmp_path, "galaxy10-decals", None, url, no_progress)
    assert [r.split()[0] for r in Logged.requests] == ["HEAD"] and not (tmp_path / "data").exists()


def test_an_interrupted_fetch_leaves_no_half_dataset_and_goes_on_from_the_files_it_has(
        server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = server
    galaxy_mnist_files(served)
    real = fetching._unpack
    calls: list[str] = []

    def breaks_on_the_second(file, path):  # noqa: ANN001, ANN202
        calls.append(file.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the person pressed Ctrl+C while it unpacked
        return real(file, path)
    monkeypatch.setattr(fetching, "_unpack", breaks_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        fetching.fetch(tmp_path, "galaxy-mnist", None, url, no_progress)
    assert not (tmp_path / "data" / "galaxy-mnist").exists()  # nothing half there under the dataset's name
    assert not (tmp_path / "experiments.toml").exists()  # registered only once the dataset is whole
    monkeypatch.setattr(fetching, "_unpack", real)
    Logged.requests = []
    fetched = fetching.fetch(tmp_path, "galaxy-mnist", None, url, no_progress)
    assert (fetched.folder / "test_dataset.hdf5").is_file() and (fetched.folder / "train_dataset.hdf5").is_file()
    assert not any("GET /train_dataset" in r for r in Logged.requests)  # the file it had was not fetched again


def test_offline_with_nothing_cached_is_one_message_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "fetch",
                           "galaxy10-decals", "--mirror", "http://127.0.0.1:9/"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot reach 127.0.0.1:9" in done.stderr and "--mirror DIR" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_recipe_s_dataset_is_where_fetch_puts_it(tmp_path: Path) -> None:
    """Either order works: `recipe` then `fetch`, or `fetch` then `recipe`, for the datasets fetch can get."""
    from galaxy_tui.recipes.catalogue import RECIPES
    for recipe in RECIPES.values():
        if recipe.dataset.name in SOURCES:
            fetched = SOURCES[recipe.dataset.name].dataset
            paths = {key: f"data/{recipe.dataset.name}/{value}" for key, value in fetched.items()
                     if key in fetching.PATH_KEYS}
            assert {key: recipe.dataset.table[key] for key in paths} == paths


class Ranged(BaseHTTPRequestHandler):
    """A server that honours Range requests (206 with Content-Range, 416 past the end), and that can break its
    first full answer off after `drop_after` bytes, as a dropped connection does, or send slowly: 16 KiB at a
    time with `pause_s` between. A subclass serves with settings of its own (its class attributes)."""
    folder = Path()
    drop_after: int | None = None
    pause_s = 0.0
    ranges: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        served = type(self)
        path = served.folder / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data, asked = path.read_bytes(), self.headers.get("Range")
        start = int(asked.split("=")[1].split("-")[0]) if asked else 0
        if body:
            served.ranges.append(asked or "")
        if start >= len(data) and asked:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        if served.drop_after is not None and not asked:
            self.wfile.write(data[:served.drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            for offset in range(start, len(data), 1 << 14):
                self.wfile.write(data[offset:offset + (1 << 14)])
                self.wfile.flush()
                time.sleep(served.pause_s)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a stopped fetch)
            pass


def test_a_download_broken_off_halfway_goes_on_from_where_it_stopped(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    whole = galaxy10_file(served, count=200)
    with_hash(monkeypatch, "galaxy10-decals", whole)
    Ranged.folder, Ranged.drop_after, Ranged.ranges = served, whole.stat().st_size // 2, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ranged)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        with pytest.raises(GalaxyError, match="broke off.*goes on from where it stopped"):
            fetching.fetch(tmp_path, "galaxy10-decals", None, url, no_progress)
        part = tmp_path / "data" / ".galaxy10-decals.partial" / "Galaxy10_DECals.h5.part"
        kept = part.stat().st_size
        assert Ranged.drop_after // 2 < kept <= Ranged.drop_after  # what arrived is kept (less the last chunk)
        fetched = fetching.fetch(tmp_path, "galaxy10-decals", None, url, no_progress)
    finally:
        httpd.shutdown()
    assert Ranged.ranges == ["", f"bytes={kept}-"]  # the second asked only for the rest
    assert pooch.file_hash(str(fetched.folder / "Galaxy10_DECals.h5")) == pooch.file_hash(str(whole))


def test_gz2_from_a_mirror_folder_unzips_its_images_and_registers_a_dataset_that_loads(
        gz2_files: dict[str, Path], tmp_path: Path) -> None:
    """GZ2 in its published layout: the Hart16 table gzipped, the mapping, and a zip whose JPEGs sit in inner
    folders beside macOS's `._` shadows (left out)."""
    import zipfile

    from galaxy_tui.data.sources import load_dataset
    mirror = tmp_path / "usb"
    mirror.mkdir()
    (mirror / "gz2_hart16.csv.gz").write_bytes(gzip.compress(gz2_files["catalog"].read_bytes()))
    (mirror / "gz2_filename_mapping.csv").write_bytes(gz2_files["mapping"].read_bytes())
    with zipfile.ZipFile(mirror / "images_gz2.zip", "w") as archive:
        for image in sorted(gz2_files["images"].glob("*.jpg")):
            archive.write(image, f"images_gz2/images/{image.name}")
            archive.writestr(f"__MACOSX/images_gz2/images/._{image.name}", b"\x00\x05\x16\x07")
    workspace = tmp_path / "ws"
    fetched = fetching.fetch(workspace, "gz2", None, str(mirror), no_progress)
    assert sorted(p.name for p in fetched.folder.iterdir()) == ["SOURCE.json", "gz2_filename_mapping.csv",
                                                                 "gz2_hart16.csv", "images"]
    assert sorted(p.name for p in (fetched.folder / "images").iterdir()) == [f"{k}.jpg" for k in range(1, 7)]
    assert fetched.sha256["images"] == "6 files" and len(fetched.sha256["gz2_hart16.csv"]) == 64
    registry = load_registry(workspace / "experiments.toml")
    dataset = load_dataset(registry.dataset("gz2"), registry.cache_dir)
    assert registry.dataset("gz2").options["crop"] == 0.75  # the cut-outs' centre, as the recipe and `n` use
    assert dataset.kind == "gz2-hart16" and len(dataset.frame) == 6 and not dataset.problems
    assert not list(fetched.folder.parent.glob(".*"))  # no partial or unpacking folder left behind


def test_a_zoobot_encoder_is_fetched_into_the_hugging_face_cache_or_said_missing_offline(tmp_path: Path) -> None:
    """The hub client cannot be pointed at a loopback server here, so the cache is filled as `hf download` leaves
    it; offline (HF_HUB_OFFLINE), fetch finds it there, and says what to do where it is not."""
    repo = tmp_path / "hub" / "models--mwalmsley--zoobot-encoder-convnext_nano"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes(b"weights")
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}

    def fetch(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path / "ws"), "fetch",
                               name], capture_output=True, text=True, timeout=120, env=env)
    found = fetch("zoobot:convnext_nano")
    assert found.returncode == 0 and "config.json, model.safetensors" in found.stdout, found.stderr
    missing = fetch("zoobot:convnext_pico")
    assert missing.returncode == 2 and "mwalmsley/zoobot-encoder-convnext_pico is not in the Hugging Face cache" \
        in missing.stderr and "offline" in missing.stderr
    wrong = fetch("zoobot:")
    assert wrong.returncode == 2 and "not a Zoobot encoder" in wrong.stderr
