"""experiments.toml: typed load, validation messages, round trips, atomic and concurrent saves."""

from __future__ import annotations

import multiprocessing
import os
import re
import tomllib
from pathlib import Path

import pytest

from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Labelling, ensure_registry, load_registry, set_labelling, update_registry

GOOD = """
[workspace]
runs_dir = "my-runs"
colour = "teal"            # a key this version does not know

[datasets.demo]
kind = "synthetic"
count = 100

[experiments.e1]
dataset = "demo"
model = "resnet18"
labels = { threshold = 0.85 }
optimizer = { name = "adamw", lr = 3e-4, weight_decay = 1e-2, betas = [0.9, 0.99] }
notes = "kept"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def test_typed_load_fills_defaults(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    experiment = registry.experiment("e1")
    assert experiment.labels == Labelling(0.85, 10, 0.5)
    assert experiment.model == "resnet18" and experiment.lr == 3e-4
    assert experiment.micro_batch == "auto" and experiment.epochs == 10
    assert registry.runs_dir == tmp_path / "my-runs"
    assert registry.dataset("demo").options["count"] == 100


def test_unknown_keys_survive_a_save(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    set_labelling(path, "e1", Labelling(0.9, 5, 0.4))
    raw = tomllib.loads(path.read_text())
    assert raw["workspace"]["colour"] == "teal"
    assert raw["experiments"]["e1"]["notes"] == "kept"
    assert raw["experiments"]["e1"]["optimizer"]["betas"] == [0.9, 0.99]
    assert load_registry(path).experiment("e1").labels == Labelling(0.9, 5, 0.4)


def test_syntax_error_names_line_and_column_and_changes_nothing(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "synthetic"', 'kind = "synthetic')
    path = write(tmp_path, text)
    with pytest.raises(GalaxyError, match=r"line 7, column 18: Illegal character"):
        load_registry(path)
    with pytest.raises(GalaxyError):
        set_labelling(path, "e1", Labelling())
    assert path.read_text() == text


@pytest.mark.parametrize("edit, message", [
    (('kind = "synthetic"', 'kind = "fits-cube"'),
     r"\[datasets.demo\] kind = 'fits-cube' is unknown; valid kinds: synthetic"),
    (('dataset = "demo"', 'dataset = "gz3"'), r"\[experiments.e1\] dataset = 'gz3' names no"),
    (("threshold = 0.85", "threshold = 0.4"), r"\[experiments.e1.labels\] threshold = 0.4 is outside \(0.5, 1.0\]"),
    (("threshold = 0.85", "threshold = 1.2"), r"outside \(0.5, 1.0\]"),
    (("lr = 3e-4", "lr = -1.0"), r"\[experiments.e1.optimizer\] lr = -1.0 must be positive"),
    (('model = "resnet18"', 'model = "resnet18\"\nepochs = 0'), r"\[experiments.e1\] epochs = 0 must be positive"),
    (('model = "resnet18"', 'model = "resnet19"'), r"model = 'resnet19' is unknown; valid models: tiny-cnn"),
    (('model = "resnet18"', 'model = "resnet18"\nmicro_batch = "max"'), r"micro_batch = 'max' must be"),
])
def test_semantic_errors_name_table_and_key(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(GalaxyError, match=message):
        load_registry(path)


def test_invalid_change_is_not_written(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(GalaxyError, match="outside"):
        set_labelling(path, "e1", Labelling(0.3, 10, 0.5))
    assert path.read_text() == GOOD


def test_first_start_writes_a_default_with_the_demo(tmp_path: Path) -> None:
    registry = ensure_registry(tmp_path / "ws")
    assert (tmp_path / "ws" / "experiments.toml").exists()
    assert registry.dataset("demo").kind == "synthetic"
    assert {name: e.task for name, e in registry.experiments.items()} == \
        {"demo-tiny": "classification", "demo-fractions": "vote-fractions"}
    assert all(e.dataset == "demo" for e in registry.experiments.values())


def _add_experiments(path: str, prefix: str, count: int) -> None:
    for i in range(count):
        def mutate(raw: dict, key: str = f"{prefix}{i}") -> None:
            raw["experiments"][key] = {"dataset": "demo", "epochs": 1}
        update_registry(Path(path), mutate)


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_experiments, args=(str(path), prefix, 15)) for prefix in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    names = set(load_registry(path).experiments)
    assert {f"a{i}" for i in range(15)} | {f"b{i}" for i in range(15)} | {"e1"} == names


def test_repo_example_registry_is_valid() -> None:
    registry = load_registry(Path(__file__).resolve().parents[1] / "experiments.toml")
    assert "demo" in registry.datasets


def test_a_byte_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "experiments.toml"
    path.write_bytes(b'[workspace]\nruns_dir = "r\xe9sultats"\n')
    with pytest.raises(GalaxyError, match=r"byte 25 \(line 2\) is not UTF-8 \(0xe9\).*re-save it as UTF-8"):
        load_registry(path)


def test_new_files_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    from galaxy_tui.atomic import atomic_write_bytes
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "new.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644


def test_an_unknown_key_is_kept_but_named_with_the_likely_intended_one(tmp_path: Path) -> None:
    typo = "[experiments.e1]\nepoch = 3\nteacher = \"run-1\"\n"
    path = write(tmp_path, GOOD.replace("[experiments.e1]\n", typo))
    registry = load_registry(path)
    assert any("'epoch' is not a key this version knows" in w and "did you mean 'epochs'" in w
               for w in registry.warnings), registry.warnings
    assert any("'teacher'" in w for w in registry.warnings)
    update_registry(path, lambda raw: None)
    assert "epoch = 3" in path.read_text()  # kept


@pytest.mark.parametrize("key, value, message", [
    ("seed", "-1", "seed = -1 must be >= 0"),
    ("max_steps_per_epoch", "-1", "must be >= 0"),
    ("early_stopping", "-2", "must be >= 0"),
    ("mistakes", "-5", "must be >= 0"),
    ("grad_clip", "-1.0", "must be >= 0"),
    ("checkpoint_minutes", "0", "checkpoint_minutes = 0.0 must be positive"),
    ("split", "[0.9, 0.0, 0.1]", "train and val above 0"),
    ("split", "[0.8, 0.1, nan]", "summing to 1"),
])
def test_numbers_outside_their_range_are_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    path = write(tmp_path, GOOD.replace("[experiments.e1]\n", f"[experiments.e1]\n{key} = {value}\n"))
    with pytest.raises(GalaxyError, match=re.escape(message)):
        load_registry(path)


@pytest.mark.parametrize("value", ["nan", "inf", "-3e-4", "0.0"])
def test_a_learning_rate_must_be_a_finite_positive_number(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, GOOD + f"\n[experiments.e2]\ndataset = \"demo\"\noptimizer = {{ lr = {value} }}\n")
    with pytest.raises(GalaxyError, match="lr"):
        load_registry(path)


@pytest.mark.parametrize("name", ["../up", "a b", "x/y"])
def test_experiment_and_dataset_names_cannot_make_paths(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, GOOD + f'\n[experiments."{name}"]\ndataset = "d1"\n')
    with pytest.raises(GalaxyError, match="may hold only letters, digits"):
        load_registry(path)


def test_status_reaches_its_readers_when_the_folder_refuses_temp_files(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a read-only run folder with a writable status.json (root ignores chmod, so mkstemp is
    made to refuse): the state is written in place instead of being lost."""
    import json
    import tempfile

    from galaxy_tui.atomic import atomic_write_json
    path = tmp_path / "status.json"
    atomic_write_json(path, {"state": "training"})

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError):
        atomic_write_json(path, {"state": "failed"})
    atomic_write_json(path, {"state": "failed", "message": "cannot write checkpoints/last.pt"}, in_place_fallback=True)
    assert json.loads(path.read_text())["state"] == "failed"
