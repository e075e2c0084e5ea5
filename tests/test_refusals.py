"""Bad input and damaged files give one line that says what, where and what to do, and exit 2: never a traceback.
The drills of the hardening review, one test each."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from galaxy_tui.cli import main
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import RunInfo, launch
from trained_runs import REALDATA, needs_realdata
from workspace_fixture import tiny_workspace


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """In-process `galaxy-tui ARGV`: the exit status (argparse's own exit too) and what it printed to stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def copied_run(demo_run: tuple[Path, RunInfo], tmp_path: Path) -> tuple[Path, Path]:
    """The session's finished demo run in a workspace of this test's own, to damage freely."""
    root, run = demo_run
    workspace = tmp_path / "ws"
    shutil.copytree(root, workspace, ignore=shutil.ignore_patterns("cache"))
    return workspace, workspace / "runs" / run.id


def test_an_experiments_toml_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "experiments.toml").mkdir()
    for argv in (("runs",), ("datasets",), ("train", "demo-tiny")):
        code, err = run_cli(capsys, "--workspace", str(tmp_path), *argv)
        assert code == 2 and "experiments.toml is a folder" in err
    from galaxy_tui.app.main import GalaxyApp
    assert "is a folder" in (GalaxyApp(tmp_path, read_runs=False).registry_error or "")


@pytest.mark.parametrize("line", ['seed = "abc"', "seed = nan", "seed = inf", "seed = [1, 2]", "seed = -1",
                                  "count = 0", "size = 1.5", 'crop = "x"', "crop = nan", "notes = 3"])
def test_bad_dataset_keys_are_refused_with_table_and_key(tmp_path: Path, line: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "experiments.toml").write_text(f'[datasets.d]\nkind = "synthetic"\n{line}\n')
    key = line.split(" =")[0]
    with pytest.raises(GalaxyError, match=rf"\[datasets\.d\] {key} ="):
        load_registry(tmp_path / "experiments.toml")
    assert run_cli(capsys, "--workspace", str(tmp_path), "datasets")[0] == 2


@pytest.mark.parametrize("options", ["merge = 5", 'merge = { a = "b" }', "merge = { a = [] }", "exclude = [1]",
                                     'path = ""'])
def test_bad_image_folder_options_are_refused(tmp_path: Path, options: str) -> None:
    path = "" if options.startswith("path") else 'path = "imgs"\n'
    (tmp_path / "experiments.toml").write_text(f'[datasets.d]\nkind = "image-folder"\n{path}{options}\n')
    with pytest.raises(GalaxyError, match=r"\[datasets\.d\] (merge|exclude|path)"):
        load_registry(tmp_path / "experiments.toml")


def test_an_unreadable_class_folder_is_a_read_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a class folder without read permission (os.scandir raising PermissionError: root, as in CI,
    reads any folder whatever its mode)."""
    from galaxy_tui.data import catalog
    from galaxy_tui.data.folder import load_image_folder
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path):  # noqa: ANN001, ANN202
        if str(path).endswith("/b"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(catalog.os, "scandir", scandir)
    with pytest.raises(GalaxyError, match=r"cannot read the folder .*imgs/b: Permission denied"):
        load_image_folder("d", tmp_path / "imgs")


@needs_realdata
def test_an_image_folder_of_one_class_is_refused_before_a_run_exists(tmp_path: Path) -> None:
    shutil.copytree(REALDATA / "0_elliptical", tmp_path / "imgs" / "elliptical")
    (tmp_path / "experiments.toml").write_text('[datasets.d]\nkind = "image-folder"\npath = "imgs"\n'
                                               '[experiments.e]\ndataset = "d"\nmodel = "tiny-cnn"\n'
                                               'image_size = 32\nepochs = 1\n')
    with pytest.raises(GalaxyError, match="only one class .*needs two or more"):
        launch(load_registry(tmp_path / "experiments.toml"), "e")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("e-*"))


@pytest.mark.slow
@pytest.mark.parametrize("model, why", [("timm:no_such_net", "timm has no architecture 'no_such_net'"),
                                        ("zoobot:convnext_nano", "not in the Hugging Face cache .* offline")])
def test_an_encoder_that_cannot_be_built_is_refused_before_a_run_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], model: str,
        why: str) -> None:
    """An offline machine (HF_HUB_OFFLINE) with an empty Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    tiny_workspace(tmp_path, extra={"model": model, "pretrained": True})
    code, err = run_cli(capsys, "--workspace", str(tmp_path), "train", "tiny")
    assert code == 2
    assert len([line for line in err.splitlines() if line.strip()]) == 1  # said once
    import re
    assert re.search(why, err)
    assert not any((tmp_path / "runs").glob("tiny-*"))


@pytest.mark.parametrize("command", [("show",), ("stop",), ("evaluate",), ("boost",), ("diff", "x"),
                                     ("export-metrics",), ("compare",), ("ensemble",), ("predict",), ("export",),
                                     ("serve",)])
def test_a_run_id_too_long_for_a_file_name(tmp_path: Path, command: tuple[str, ...],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    tiny_workspace(tmp_path)
    code, err = run_cli(capsys, "--workspace", str(tmp_path), command[0], "a" * 300, *command[1:])
    assert code == 2 and "is not a run id" in err and len(err) < 400


def test_piped_output_closed_early_ends_quietly(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    for n in range(1500):  # more than a pipe holds, so the writes meet the closed pipe
        run = tmp_path / "runs" / f"run-{n:04d}"
        run.mkdir(parents=True)
        (run / "status.json").write_text(json.dumps({"state": "finished", "experiment": "tiny", "started": n}))
    done = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"{sys.executable} -m galaxy_tui.cli --workspace {tmp_path} runs | head -1"],
                          capture_output=True, text=True)
    assert done.stdout.startswith("run\t") and done.stderr == ""
    assert done.returncode == 141


def test_an_empty_checkpoint_is_said_to_be_empty(tmp_path: Path) -> None:
    from galaxy_tui.train.checkpoint import load_checkpoint
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(GalaxyError, match=r"best.pt is empty \(0 bytes\).*--restart"):
        load_checkpoint(tmp_path / "best.pt", "hash")


def test_zero_byte_checkpoints_in_predict_and_evaluate(demo_run: tuple[Path, RunInfo], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    workspace, run_dir = copied_run(demo_run, tmp_path)
    for name in ("best.pt", "last.pt"):
        (run_dir / "checkpoints" / name).write_bytes(b"")
    code, err = run_cli(capsys, "--workspace", str(workspace), "predict", run_dir.name, str(REALDATA),
                        "--out", str(tmp_path / "p.csv"))
    assert code == 2 and "is empty (0 bytes)" in err


@pytest.mark.parametrize("argv, why", [(("--port", "99999"), "not a TCP port"),
                                       (("--port", "http"), "not a TCP port"),
                                       (("--max-upload-mb", "nan"), "not a size in MB"),
                                       (("--max-upload-mb", "inf"), "not a size in MB"),
                                       (("--max-files", "0"), "not a whole number"),
                                       (("--max-batch", "-3"), "not a whole number")])
def test_serve_options_out_of_range(tmp_path: Path, argv: tuple[str, ...], why: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "--workspace", str(tmp_path), "serve", "some-run", *argv)
    assert code == 2 and why in err


def test_a_full_disk_in_export_metrics(demo_run: tuple[Path, RunInfo], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A real 64 kB file system (tmpfs; needs root and mount, as in CI), already full."""
    root, run = demo_run
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and a mount-capable sandbox")
    try:
        with open(disk / "filler", "wb") as filler:
            with pytest.raises(OSError):
                filler.write(b"x" * 200_000)
                filler.flush()
        code, err = run_cli(capsys, "--workspace", str(root), "export-metrics", run.id, "-o", str(disk / "m.csv"))
        assert code == 2 and f"no space left to write {disk}" in err
        assert not (disk / "m.csv").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_export_metrics_into_a_pipe_writes_through_it(demo_run: tuple[Path, RunInfo], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`-o /dev/stdout` and the like: a device or a pipe is written to, never replaced by a regular file."""
    import threading
    root, run = demo_run
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, _ = run_cli(capsys, "--workspace", str(root), "export-metrics", run.id, "-o", str(fifo))
    reader.join(timeout=30)
    assert code == 0 and received and received[0].startswith(b"run,")
    import stat
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_metrics_json_edited_to_wrong_types(demo_run: tuple[Path, RunInfo], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    workspace, run_dir = copied_run(demo_run, tmp_path)
    path = run_dir / "results" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics.update(accuracy="oops", loss=[1], per_class=[1, 2], calibration={"temperature": "hot"},
                   seconds={"a": 1})
    path.write_text(json.dumps(metrics))
    for argv in (("show", run_dir.name), ("compare", run_dir.name),
                 ("predict", run_dir.name, str(REALDATA), "--out", str(tmp_path / "p.csv"))):
        assert run_cli(capsys, "--workspace", str(workspace), *argv)[0] == 0
    metrics["classes"] = {"a": 1}
    path.write_text(json.dumps(metrics))
    predict = ("predict", run_dir.name, str(REALDATA), "--out", str(tmp_path / "p.csv"))
    assert run_cli(capsys, "--workspace", str(workspace), *predict)[0] == 0  # config.toml froze the classes
    import tomllib

    import tomli_w
    config = tomllib.loads((run_dir / "config.toml").read_text())
    del config["task"]  # as a run of a version that froze no classes
    (run_dir / "config.toml").write_text(tomli_w.dumps(config))
    code, err = run_cli(capsys, "--workspace", str(workspace), *predict)
    assert code == 2 and "names its classes (missing or damaged)" in err


def test_show_names_the_damaged_keys(demo_run: tuple[Path, RunInfo], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from galaxy_tui.report import print_report
    from galaxy_tui.runs import run_info
    _, run_dir = copied_run(demo_run, tmp_path)
    path = run_dir / "results" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "accuracy": "oops", "confusion": 3,
                                "best_epoch": "three"}))
    console = Console(record=True, width=200)
    print_report(run_info(run_dir), console)
    text = console.export_text()
    assert "accuracy = 'oops' is damaged (a str)" in text and "confusion = 3 is damaged" in text
    assert "test accuracy n/a" in text
    assert "best_epoch = 'three' is damaged" in text and "epoch None" not in text and "(epoch" not in text
