"""timm and Zoobot encoders without the internet: the same timm architectures with random weights, saved as
a safetensors file and as a Hugging Face cache-shaped folder under a temporary HF_HOME (what `hf download`
leaves), loaded, refused when they do not fit, and a clear message when offline with no copy. Then a
`zoobot:` experiment whose weights come from a local file trains on the demo and predicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import load_registry
from galaxy_tui.runs import launch
from trained_runs import finished
from workspace_fixture import tiny_workspace

pytest.importorskip("timm", reason="timm is not installed")
from encoder_files import random_encoder, saved  # noqa: E402
from galaxy_tui.train.models import build_model, head_layer  # noqa: E402


def hub_cache(home: Path, repo: str, encoder: torch.nn.Module, config: dict) -> None:
    """The folder `hf download REPO` leaves under $HF_HOME/hub."""
    folder = home / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    saved(encoder, snapshot / "model.safetensors")
    (snapshot / "config.json").write_text(json.dumps(config))


def test_weights_from_a_file_become_the_encoder_s_and_a_classifier_in_the_file_is_ignored(tmp_path: Path) -> None:
    source = random_encoder("convnext_atto", classes=10)  # a file with timm's own 10-class head in it
    model = build_model("timm:convnext_atto", 3, weights=saved(source, tmp_path / "atto.safetensors"))
    for name, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, source.state_dict()[name])
    assert head_layer(model).out_features == 3 and model(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_weights_that_do_not_fit_are_refused_plainly(tmp_path: Path) -> None:
    path = saved(random_encoder("convnext_atto"), tmp_path / "atto.safetensors")
    with pytest.raises(GalaxyError, match="do not fit timm:convnext_pico"):
        build_model("timm:convnext_pico", 3, weights=path)
    (tmp_path / "broken.safetensors").write_bytes(b"not weights")
    with pytest.raises(GalaxyError, match="cannot read weights"):
        build_model("timm:convnext_atto", 3, weights=tmp_path / "broken.safetensors")
    with pytest.raises(GalaxyError, match="timm has no architecture"):
        build_model("timm:no_such_net", 3)


def in_fresh_python(code: str, home: Path) -> subprocess.CompletedProcess:
    """huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when imported: a new process sees the test's."""
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_a_zoobot_encoder_loads_from_the_hugging_face_cache_with_its_pretraining_config(tmp_path: Path) -> None:
    encoder = random_encoder("convnext_atto", in_chans=1, seed=7)
    hub_cache(tmp_path, "mwalmsley/zoobot-encoder-greyscale-convnext_atto", encoder,
              {"architecture": "convnext_atto", "num_classes": 0,
               "pretrained_cfg": {"input_size": [1, 224, 224], "mean": [0.2], "std": [0.3]}})
    torch.save(encoder.state_dict(), tmp_path / "expected.pt")
    done = in_fresh_python(f"""
import torch
from galaxy_tui.train.models import build_model
model = build_model("zoobot:greyscale-convnext_atto", 4, pretrained=True)
expected = torch.load({str(tmp_path / 'expected.pt')!r})
assert all(torch.equal(v, expected[k]) for k, v in model.encoder.state_dict().items())
x = torch.rand(1, 3, 32, 32)
print(model.input_mean.flatten().tolist(), model.input_std.flatten().tolist(), model.pretrained_size,
      model.encoder.stem[0].weight.shape[1], tuple(model(x).shape))
""", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0.20000000298023224]", "[0.30000001192092896]", "224", "1", "(1,", "4)"]


def test_offline_with_no_copy_says_which_model_and_how_to_fetch_it(tmp_path: Path) -> None:
    started = time.monotonic()
    done = in_fresh_python("""
from galaxy_tui.errors import GalaxyError
from galaxy_tui.train.models import build_model
try:
    build_model("zoobot:convnext_nano", 3, pretrained=True)
except GalaxyError as exc:
    print(exc)
""", tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "zoobot:convnext_nano" in done.stdout and "hf download mwalmsley/zoobot-encoder-convnext_nano" in done.stdout
    assert time.monotonic() - started < 60  # no hang


def test_the_registry_takes_timm_and_zoobot_names_and_weights_only_for_them(tmp_path: Path) -> None:
    registry = tiny_workspace(tmp_path, extra={"model": "zoobot:convnext_atto", "weights": "w.safetensors"})
    assert registry.experiments["tiny"].model == "zoobot:convnext_atto"
    for model, weights, message in (("timm:", "", "is unknown"), ("timm:a b", "", "is unknown"),
                                    ("resnet18", "w.safetensors", "needs a timm: or zoobot: model")):
        with pytest.raises(GalaxyError, match=message):
            tiny_workspace(tmp_path / model.replace(":", "_").replace(" ", "_"),
                           extra={"model": model, **({"weights": weights} if weights else {})})


@pytest.mark.slow
def test_a_zoobot_experiment_with_a_local_weights_file_finetunes_on_the_demo_and_predicts(tmp_path: Path) -> None:
    """The recipe in a real run: a head-only epoch, then the top two blocks; the blocks below keep the file's
    weights to the last bit."""
    encoder = random_encoder("convnext_atto", seed=3)
    saved(encoder, tmp_path / "weights" / "zoobot-atto.safetensors")
    registry = tiny_workspace(tmp_path, epochs=2, count=300, extra={
        "model": "zoobot:convnext_atto", "weights": "weights/zoobot-atto.safetensors", "pretrained": True,
        "finetune": {"frozen_epochs": 1, "unfreeze_blocks": 2}})
    run = finished(launch(registry, "tiny"))
    events = [json.loads(line) for line in (run.dir / "events.jsonl").read_text().splitlines()]
    assert any("pretrained on 224 px" in e["message"] for e in events if e["type"] == "warning")
    assert [(e["epoch"], e["blocks"]) for e in events if e["type"] == "trainable"] == \
        [(1, []), (2, ["stages.3", "stages.2"])]
    trained = torch.load(run.dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    for name, value in encoder.state_dict().items():
        frozen = name.startswith(("stem.", "stages.0.", "stages.1."))
        assert torch.equal(trained[f"encoder.{name}"], value) == frozen, name
    done = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(tmp_path), "predict", run.id,
                           "--dataset", "tiny", "--out", str(tmp_path / "p.csv")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr  # the checkpoint alone rebuilds it: no weights file, no hub
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 301
    assert load_registry(tmp_path / "experiments.toml").experiments["tiny"].weights
