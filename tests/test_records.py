"""Runs as people keep them, without a terminal: tags and notes in the run folder, the filter, config
diffs, metrics export, deleting a run, and the headless commands for them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import tomli_w

from fixture_runs import add_live_run, fixture_workspace
from galaxy_tui.cli import main
from galaxy_tui.errors import GalaxyError
from galaxy_tui.records.config_diff import MISSING, config_changes, run_changes
from galaxy_tui.records.export import COLUMNS, metrics_csv
from galaxy_tui.records.notes import NOTES_FILE, parse_tags, read_notes, write_notes
from galaxy_tui.records.run_filter import parse_filter, run_facts
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import RunInfo, delete_run, find_runs

FINISHED, FAILED = "demo-tiny-20261101-120000", "demo-tiny-20261101-110000"


def test_tags_and_a_note_live_in_the_run_folder(tmp_path: Path) -> None:
    run = fixture_workspace(tmp_path) / "runs" / FINISHED
    write_notes(run, parse_tags("#baseline, lr-sweep baseline"), "  first try with AdamW \n")
    assert read_notes(run).tags == ("baseline", "lr-sweep") and read_notes(run).note == "first try with AdamW"
    stored = json.loads((run / NOTES_FILE).read_text())
    assert stored == {"tags": ["baseline", "lr-sweep"], "note": "first try with AdamW"}


def test_a_bad_tag_and_a_damaged_notes_file_are_refused_with_nothing_lost(tmp_path: Path) -> None:
    run = fixture_workspace(tmp_path) / "runs" / FINISHED
    with pytest.raises(GalaxyError, match="'a/b'"):
        parse_tags("ok a/b")
    (run / NOTES_FILE).write_text('{"tags": ["kept"], "note": "half writ')
    with pytest.raises(GalaxyError, match="fix or delete the file"):
        write_notes(run, ("new",), "")
    assert (run / NOTES_FILE).read_text() == '{"tags": ["kept"], "note": "half writ'
    assert read_notes(run).problem and read_notes(run).tags == ()


def facts(state: str = "finished", experiment: str = "gz2-resnet", best: float | None = 0.91,
          metrics: dict | None = None, tags: tuple[str, ...] = (), note: str = ""):  # noqa: ANN201
    info = RunInfo("gz2-resnet-20261201-1200", Path("/x"), experiment, state, epoch=7, epochs=10, best_metric=best)
    return run_facts(info, metrics, tags, note)


@pytest.mark.parametrize(("text", "passes", "fails"), [
    ("resnet", facts(), None),  # in the run id
    ("state:fin", facts(), facts(state="failed")),
    ("exp:resnet", facts(), facts(experiment="zoobot")),
    ("#baseline", facts(tags=("baseline",)), facts(tags=("baseline-2",))),
    ("tag:Baseline", facts(tags=("baseline",)), facts()),
    ("acc>0.9", facts(metrics={"accuracy": 0.93}), facts(metrics={"accuracy": 0.9})),
    ("acc > 0.9", facts(metrics={"accuracy": 0.93}), facts()),  # no test accuracy yet: no pass
    ("best>=0.91 epoch<10", facts(), facts(best=0.9)),
    ("minutes<5 loss<=0.3", facts(metrics={"seconds": 120, "loss": 0.3}), facts(metrics={"seconds": 600, "loss": 0.1})),
    ("adamw", facts(note="tried AdamW"), facts(note="tried SGD")),
])
def test_the_filter_words(text: str, passes, fails) -> None:  # noqa: ANN001
    wanted = parse_filter(text)
    assert wanted(passes)
    if fails is not None:
        assert not wanted(fails)


@pytest.mark.parametrize(("text", "says"), [("acurracy>0.9", "no figure 'acurracy'"), ("acc>high", "not a number"),
                                            ("state:", "after the colon")])
def test_a_filter_that_cannot_be_understood_says_why(text: str, says: str) -> None:
    with pytest.raises(GalaxyError, match=says):
        parse_filter(text)


def test_the_config_diff_names_each_changed_key_and_not_the_place() -> None:
    first = {"run": {"experiment": "a", "id": "a-1", "workspace": "/w1", "config_hash": "1"},
             "experiment": {"model": "resnet18", "optimizer": {"name": "adamw", "lr": 3e-4}, "epochs": 10},
             "dataset": {"name": "gz2"}}
    second = {"run": {"experiment": "a", "id": "a-2", "workspace": "/w2", "config_hash": "2"},
              "experiment": {"model": "resnet18", "optimizer": {"name": "adamw", "lr": 1e-3}, "mixup": 0.2},
              "dataset": {"name": "gz2"}}
    changes = {c.key: (c.before, c.after) for c in config_changes(first, second)}
    assert changes == {"experiment.optimizer.lr": (3e-4, 1e-3), "experiment.epochs": (10, MISSING),
                       "experiment.mixup": (MISSING, 0.2)}


def test_metrics_export_has_a_row_per_epoch_with_the_final_figures(tmp_path: Path) -> None:
    runs = fixture_workspace(tmp_path) / "runs"
    rows = list(csv.DictReader(io.StringIO(metrics_csv([runs / FINISHED, runs / FAILED]))))
    finished = [r for r in rows if r["run"] == FINISHED]
    assert [int(r["epoch"]) for r in finished] == list(range(1, 9)) and set(rows[0]) == set(COLUMNS)
    events = [json.loads(line) for line in (runs / FINISHED / "events.jsonl").read_text().splitlines()]
    last_epoch = [e for e in events if e["type"] == "epoch"][-1]
    assert float(finished[-1]["val_acc"]) == last_epoch["val_acc"] and int(finished[-1]["step"]) == last_epoch["step"]
    assert float(finished[-1]["lr"]) == [e for e in events if e["type"] == "step"][-1]["lr"]
    assert all(r["test_accuracy"] == "0.9625" for r in finished)
    failed = [r for r in rows if r["run"] == FAILED]
    assert len(failed) == 1 and failed[0]["state"] == "failed" and failed[0]["epoch"] == ""


def test_deleting_a_run_needs_its_whole_id_and_an_ended_run(tmp_path: Path) -> None:
    registry = load_registry(fixture_workspace(tmp_path) / "experiments.toml")
    live = add_live_run(tmp_path)
    with pytest.raises(GalaxyError, match="whole id"):
        delete_run(registry, FINISHED[:-3])
    with pytest.raises(GalaxyError, match="stop it first"):
        delete_run(registry, live)
    delete_run(registry, FINISHED)
    assert not (registry.runs_dir / FINISHED).exists()
    assert {r.id for r in find_runs(registry)} == {live, FAILED}
    assert not list(registry.runs_dir.glob(".deleting-*"))


def test_the_headless_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fixture_workspace(tmp_path)
    runs = root / "runs"
    write_notes(runs / FINISHED, ("baseline",), "")
    assert main(["--workspace", str(root), "runs", "--filter", "#baseline"]) == 0
    listed = capsys.readouterr().out.splitlines()  # piped: a header and one whole id a line
    assert [line.split("\t")[0] for line in listed[1:]] == [FINISHED] and listed[1].endswith("\tbaseline")
    assert main(["--workspace", str(root), "runs", "--filter", "acc>>1"]) == 2
    assert "filter" in capsys.readouterr().err

    out = tmp_path / "curves.csv"
    assert main(["--workspace", str(root), "export-metrics", FINISHED, FAILED, "-o", str(out)]) == 0
    assert len(list(csv.DictReader(out.open()))) == 9
    assert main(["--workspace", str(root), "export-metrics", FINISHED]) == 0
    assert capsys.readouterr().out.startswith(",".join(COLUMNS))

    for run, lr in ((FINISHED, 3e-4), (FAILED, 1e-3)):
        (runs / run / "config.toml").write_text(tomli_w.dumps({"run": {"experiment": "demo-tiny"},
                                                               "experiment": {"lr": lr, "model": "tiny-cnn"}}))
    assert [(c.key, c.before, c.after) for c in run_changes(runs / FINISHED, runs / FAILED)] == \
        [("experiment.lr", 3e-4, 1e-3)]
    assert main(["--workspace", str(root), "diff", FINISHED, FAILED]) == 0
    shown = capsys.readouterr().out
    assert "experiment.lr" in shown and "0.0003" in shown and "0.001" in shown and "model" not in shown


def test_launching_an_experiment_that_is_running_says_what_can_be_done(tmp_path: Path) -> None:
    """Without checkpoints yet (probing), a plain launch used to start a second run beside the live one."""
    from galaxy_tui.runs import launch
    registry = load_registry(fixture_workspace(tmp_path) / "experiments.toml")
    live = add_live_run(tmp_path)
    for choice in (None, "resume", "skip"):
        with pytest.raises(GalaxyError, match=f"is training now in run {live}.*stop it first.*--restart"):
            launch(registry, "demo-tiny", choice)


def test_runs_and_show_speak_json_for_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = fixture_workspace(tmp_path)
    assert main(["--workspace", str(workspace), "runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_id = {run["id"]: run for run in listed}
    assert by_id[FINISHED]["state"] == "finished" and by_id[FAILED]["state"] == "failed"
    assert all(set(run) >= {"id", "experiment", "state", "attempt", "best", "best_measures", "dir", "tags"}
               for run in listed)
    assert main(["--workspace", str(workspace), "runs", "--json", "--filter", "state:failed"]) == 0
    assert [run["id"] for run in json.loads(capsys.readouterr().out)] == [FAILED]
    assert main(["--workspace", str(workspace), "show", FINISHED, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["id"] == FINISHED and isinstance(shown["metrics"], dict) and shown["damaged"] == []


def test_a_dataset_labelled_by_its_files_has_no_labelling_to_compare(tmp_path: Path) -> None:
    """An image folder's classes come from its folders: the threshold its experiment carries means nothing, so
    compare says — and two such runs with other thresholds are comparable."""
    import tomli_w

    from galaxy_tui.analysis.comparison import comparability
    from galaxy_tui.runs import RunInfo
    keys = []
    for name, threshold in (("a", 0.8), ("b", 0.9)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.toml").write_text(tomli_w.dumps({
            "dataset": {"name": "gz1", "kind": "image-folder", "path": "x"},
            "experiment": {"labels": {"threshold": threshold}}}))
        (run / "split.csv").write_text("id,split\n1,train\n")
        keys.append(comparability(RunInfo(name, run, "e", "finished")))
    assert keys[0].labelling == "" and keys[0].why_not(keys[1]) == ""
    assert "threshold" not in keys[0].describe() and "labels from its files" in keys[0].describe()
