"""`galaxy-tui fetch kaggle-gz2`: the Kaggle challenge's files through the Kaggle CLI. Kaggle's servers cannot be
reached here, so a stand-in `kaggle` executable on PATH plays the CLI: it takes the real CLI's arguments
(`competitions files -c C -v`, `competitions download -c C -f NAME -p DIR -q`), prints the listing as kaggle 2.x
does (CSV, sizes in bytes) and downloads from a loopback HTTP server serving a Kaggle-shaped folder (the zips as the
competition's data page lists them); told to, it fails as the real one does when the rules are not accepted.
The real CLI is run too, where it is installed, for what it does without a reachable server."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching import fetch as fetching
from galaxy_tui.fetching import kaggle_cli
from galaxy_tui.fetching.kaggle_cli import _bytes, kaggle_download, kaggle_sizes, kaggle_token
from galaxy_tui.registry import load_registry

COMPETITION = "galaxy-zoo-the-galaxy-challenge"

FAKE_CLI = '''#!{python}
import csv, os, sys, time, urllib.request
args = sys.argv[1:]
log = os.environ["FAKE_KAGGLE_LOG"]
with open(log, "a") as out:
    out.write(" ".join(args) + "\\n")
url = os.environ["FAKE_KAGGLE_URL"]
def option(flag):
    return args[args.index(flag) + 1]
assert args[0] == "competitions" and option("-c") == "{competition}", args
if os.environ.get("FAKE_KAGGLE_FAIL"):
    print("403 Client Error: Forbidden for url: https://www.kaggle.com/api/v1/competitions/data/download-all/x")
    sys.exit(1)
if args[1] == "files":
    writer = csv.writer(sys.stdout)
    writer.writerow(["name", "size", "creationDate"])
    for name in sorted(os.listdir(os.environ["FAKE_KAGGLE_FOLDER"])):
        size = os.path.getsize(os.path.join(os.environ["FAKE_KAGGLE_FOLDER"], name))
        writer.writerow([name, size, "2014-01-01 00:00:00"])
elif args[1] == "download":
    name, folder = option("-f"), option("-p")
    with urllib.request.urlopen(url + name) as answer, open(os.path.join(folder, name), "wb") as out:
        body = answer.read()
        if os.environ.get("FAKE_KAGGLE_SLOW"):  # half now, the rest a minute later
            out.write(body[:len(body) // 2])
            out.flush()
            time.sleep(60)
        out.write(body)
'''


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kaggle_shaped(tmp_path: Path, kaggle_files: dict[str, Path]) -> Iterator[Path]:
    """The competition's two training files as Kaggle serves them, zipped, on a loopback server, and the
    stand-in CLI on PATH pointed at it (with a token in the environment)."""
    served = tmp_path / "kaggle"
    served.mkdir()
    with zipfile.ZipFile(served / "training_solutions_rev1.zip", "w") as archive:
        archive.write(kaggle_files["solutions"], "training_solutions_rev1.csv")
    with zipfile.ZipFile(served / "images_training_rev1.zip", "w") as archive:
        for image in sorted(kaggle_files["images"].glob("*.jpg")):
            archive.write(image, f"images_training_rev1/{image.name}")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "kaggle"
    cli.write_text(FAKE_CLI.format(python=sys.executable, competition=COMPETITION))
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        patch.setenv("HOME", str(tmp_path / "home"))
        patch.setenv("KAGGLE_API_TOKEN", "a-token")
        patch.setenv("FAKE_KAGGLE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/")
        patch.setenv("FAKE_KAGGLE_FOLDER", str(served))
        patch.setenv("FAKE_KAGGLE_LOG", str(tmp_path / "cli.log"))
        yield served
    httpd.shutdown()


def no_progress(*_: object) -> None:
    pass


def test_kaggle_gz2_through_the_cli_is_unzipped_registered_and_loads(kaggle_shaped: Path, tmp_path: Path) -> None:
    from galaxy_tui.data.sources import load_dataset
    seen: list[tuple[str, int, int | None]] = []
    workspace = tmp_path / "ws"
    fetched = fetching.fetch(workspace, "kaggle-gz2", None, None, lambda *said: seen.append(said))
    calls = (tmp_path / "cli.log").read_text().splitlines()
    assert calls[0].startswith(f"competitions files -c {COMPETITION} -v")  # the sizes first, before any byte
    assert calls[1:] == [f"competitions download -c {COMPETITION} -f {name} -p {fetched.folder.parent}/"
                         f".kaggle-gz2.partial -q" for name in ("training_solutions_rev1.zip",
                                                                 "images_training_rev1.zip")]
    assert sorted(p.name for p in fetched.folder.iterdir()) == ["SOURCE.json", "images_training_rev1",
                                                                 "training_solutions_rev1.csv"]
    size = (kaggle_shaped / "images_training_rev1.zip").stat().st_size
    assert ("images_training_rev1.zip", size, size) in seen  # progress counted against the listed size
    registry = load_registry(workspace / "experiments.toml")
    spec = registry.dataset("kaggle-gz2")
    assert spec.kind == "kaggle-gz2" and spec.options["crop"] == 0.75
    dataset = load_dataset(spec, registry.cache_dir)
    assert len(dataset.frame) == 3 and not dataset.problems
    assert not list(fetched.folder.parent.glob(".*"))


def test_kaggle_gz2_from_a_kaggle_shaped_mirror_folder_needs_no_cli(kaggle_shaped: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(kaggle_cli, "scripts_folder", lambda: str(tmp_path / "nothing"))
    fetched = fetching.fetch(tmp_path / "ws", "kaggle-gz2", None, str(kaggle_shaped), no_progress)
    assert (fetched.folder / "training_solutions_rev1.csv").is_file()
    assert len(list((fetched.folder / "images_training_rev1").iterdir())) == 3


def test_the_cli_beside_this_python_is_found_where_path_does_not_lead(kaggle_shaped: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtual environment used without activating it: `pip install kaggle` put the CLI beside its python."""
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(kaggle_cli, "scripts_folder", lambda: str(tmp_path / "bin"))
    fetched = fetching.fetch(tmp_path / "ws", "kaggle-gz2", None, None, no_progress)
    assert (fetched.folder / "training_solutions_rev1.csv").is_file()


def test_without_the_cli_or_a_token_the_message_says_what_to_get_and_where(kaggle_shaped: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    with pytest.raises(GalaxyError) as no_token:
        fetching.fetch(tmp_path / "ws", "kaggle-gz2", None, None, no_progress)
    said = str(no_token.value)
    assert "no token" in said and "~/.kaggle/access_token" in said
    assert "training_solutions_rev1.zip and images_training_rev1.zip" in said and "--mirror FOLDER" in said
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text('{"username": "me", "key": "k"}')
    assert kaggle_token() == str(tmp_path / "home" / ".kaggle" / "kaggle.json")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(kaggle_cli, "scripts_folder", lambda: str(tmp_path / "nothing"))
    with pytest.raises(GalaxyError) as no_cli:
        fetching.fetch(tmp_path / "ws", "kaggle-gz2", None, None, no_progress)
    assert "pip install kaggle" in str(no_cli.value) and "kaggle.com/competitions/" in str(no_cli.value)
    assert not (tmp_path / "ws" / "data").exists()  # nothing written


def test_rules_not_accepted_is_said_with_where_to_accept_them(kaggle_shaped: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KAGGLE_FAIL", "1")
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path / "ws"), "fetch",
                           "kaggle-gz2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"kaggle.com/competitions/{COMPETITION}/rules" in done.stderr and "403" in done.stderr


def test_a_stopped_kaggle_download_ends_the_cli_and_keeps_what_arrived(kaggle_shaped: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch job's stop is its progress raising (executors.job_worker.Stopped); here a stand-in of it."""
    monkeypatch.setenv("FAKE_KAGGLE_SLOW", "1")

    class Stop(Exception):
        pass

    def stop_at_first_bytes(_name: str, done: int, _total: int | None) -> None:
        if done:
            raise Stop
    folder = tmp_path / "partial"
    folder.mkdir()
    started = time.monotonic()
    with pytest.raises(Stop):
        kaggle_download(COMPETITION, "images_training_rev1.zip", folder, None, stop_at_first_bytes)
    assert time.monotonic() - started < 30  # the CLI was ended, not waited for
    whole = (kaggle_shaped / "images_training_rev1.zip").stat().st_size
    assert 0 < (folder / "images_training_rev1.zip").stat().st_size < whole


def test_sizes_as_either_cli_version_prints_them() -> None:
    assert _bytes("1371852343") == 1371852343 and _bytes("1.36GB") == 1_360_000_000 and _bytes("512 MB") == 512e6
    assert _bytes("") is None and _bytes("big") is None


@pytest.mark.skipif(shutil.which("kaggle", path=kaggle_cli.scripts_folder()) is None,
                    reason="the Kaggle CLI (pip install kaggle) is not installed")
def test_the_real_cli_without_a_reachable_kaggle_is_one_message(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Here Kaggle cannot be reached (offline); on a box online the made-up token is refused. Either way: one
    message, no traceback."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "not-a-real-token")
    with pytest.raises(GalaxyError) as refused:
        kaggle_sizes(COMPETITION, ["training_solutions_rev1.zip"])
    assert "the Kaggle CLI could not get" in str(refused.value) and "Traceback" not in str(refused.value)
