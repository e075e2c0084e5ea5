"""timm backbones (`timm:NAME`) and Zoobot's galaxy-pretrained encoders (`zoobot:NAME`, the timm models of
the Hugging Face repositories mwalmsley/zoobot-encoder-NAME), each with a linear head for the run's
outputs. Pretrained weights come from the local Hugging Face cache, from a file (`weights = "..."`), or
are downloaded when the machine is online; offline with no copy, a message says how to bring one."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import ZOOBOT_REPO
from galaxy_tui.train.batches import MEAN, STD

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
LUMINANCE = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class EncoderSpec:
    name: str            # as the experiment says: timm:NAME or zoobot:NAME
    architecture: str    # the timm architecture
    in_chans: int        # 1 for Zoobot's greyscale encoders
    repo: str | None     # where pretrained weights live on the Hugging Face hub (None: timm's own, if any)


def encoder_spec(name: str) -> EncoderSpec:
    source, _, architecture = name.partition(":")
    if source == "zoobot":
        grey = architecture.startswith("greyscale-")
        return EncoderSpec(name, architecture.removeprefix("greyscale-"), 1 if grey else 3,
                           ZOOBOT_REPO.format(architecture))
    return EncoderSpec(name, architecture, 3, None)


class EncoderNet(nn.Module):
    """An encoder and a linear head. It takes what every model here takes (RGB normalised with ImageNet's
    mean and std) and hands the encoder its own input: the mean and std it was pretrained with, one
    luminance channel for a greyscale encoder. Its mean and std are buffers, so checkpoints carry them."""

    def __init__(self, encoder: nn.Module, outputs: int, mean: list[float], std: list[float], in_chans: int,
                 pretrained_size: int | None = None):
        super().__init__()
        self.pretrained_size = pretrained_size  # the image size the encoder learnt at
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.num_features), outputs)  # type: ignore[arg-type]
        self.register_buffer("imagenet_mean", MEAN.clone() / 255, persistent=False)
        self.register_buffer("imagenet_std", STD.clone() / 255, persistent=False)
        self.register_buffer("luminance", torch.tensor(LUMINANCE).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_mean", torch.tensor(mean[:in_chans], dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(std[:in_chans], dtype=torch.float32).view(1, -1, 1, 1))
        self.grey = in_chans == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = x * self.imagenet_std + self.imagenet_mean  # back to 0..1 RGB
        if self.grey:
            unit = (unit * self.luminance).sum(1, keepdim=True)
        return self.head(self.encoder((unit - self.input_mean) / self.input_std))


def _fetch_hint(repo: str) -> str:
    return (f"on a machine with internet run `hf download {repo}` (pip install huggingface_hub), then copy "
            f"~/.cache/huggingface/hub/models--{repo.replace('/', '--')} into this machine's Hugging Face cache "
            f"($HF_HOME/hub, default ~/.cache/huggingface/hub); or download its model.safetensors and set "
            f"weights = \"path/to/model.safetensors\"")


def _reachable(endpoint: str) -> bool:
    """Whether the hub answers at all, asked in 3 s (the hub client itself retries for half a minute)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # through a proxy only the real request can tell
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=3):
            return True
    except OSError:
        return False


def _cached(repo: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def _cached_weights_or_online(spec: EncoderSpec, repo: str) -> Path | None:
    """The cached weights file of `repo`, or None when they can be downloaded; a GalaxyError when neither."""
    from huggingface_hub import constants

    weights = next((path for path in (_cached(repo, name) for name in WEIGHT_FILES) if path is not None), None)
    if weights is None and (constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT)):
        raise GalaxyError(f"{spec.name}: its pretrained weights ({repo}) are not in the Hugging Face cache "
                          f"({constants.HF_HUB_CACHE}) and this machine is offline (or HF_HUB_OFFLINE is set); "
                          f"{_fetch_hint(repo)}.")
    return weights


def _cached_or_downloaded(spec: EncoderSpec, repo: str) -> tuple[Path, Path | None]:
    """The weights file and config.json of `repo`: from the cache, else downloaded (online only)."""
    from huggingface_hub import constants, hf_hub_download

    weights = _cached_weights_or_online(spec, repo)
    if weights is not None:
        return weights, _cached(repo, "config.json")
    try:
        weights = Path(hf_hub_download(repo, WEIGHT_FILES[0], etag_timeout=10))
    except Exception as exc:  # no network, no such repository, a proxy: all end the same way
        raise GalaxyError(f"{spec.name}: its pretrained weights ({repo}) are not in the Hugging Face cache "
                          f"({constants.HF_HUB_CACHE}) and could not be downloaded ({type(exc).__name__}); "
                          f"{_fetch_hint(repo)}.") from None
    try:
        config = Path(hf_hub_download(repo, "config.json", etag_timeout=10))
    except Exception:
        config = None
    return weights, config


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GalaxyError(f"cannot read weights from {path}: {exc}") from None
    for key in ("state_dict", "model"):  # a training checkpoint wraps the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise GalaxyError(f"{path} holds no state dict of weights")
    return state


def _load_encoder_weights(encoder: nn.Module, path: Path, spec: EncoderSpec) -> None:
    state = _read_state(path)
    for prefix in ("encoder.", "model.", "module."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key.removeprefix(prefix): value for key, value in state.items()}
    classifier = str(getattr(encoder, "pretrained_cfg", {}).get("classifier") or "head.fc")
    state = {key: value for key, value in state.items() if not key.startswith(classifier + ".")}
    try:
        missing, unexpected = encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise GalaxyError(f"the weights in {path} do not fit {spec.name} ({spec.architecture}, {spec.in_chans} "
                          f"channel(s)): {first}") from None
    if missing or unexpected:
        raise GalaxyError(f"the weights in {path} do not fit {spec.name} ({spec.architecture}): "
                          f"{len(missing)} missing (e.g. {', '.join(missing[:3]) or '-'}), {len(unexpected)} "
                          f"unexpected (e.g. {', '.join(unexpected[:3]) or '-'}); is it that architecture?")


def _pretrained_cfg(config_file: Path | None, encoder: nn.Module) -> dict[str, Any]:
    """The encoder's pretraining: the config.json beside its weights (a hub snapshot), else timm's default."""
    default = dict(getattr(encoder, "pretrained_cfg", {}) or {})
    if config_file is not None and config_file.exists():
        try:
            saved = json.loads(config_file.read_text()).get("pretrained_cfg") or {}
        except (OSError, ValueError):
            saved = {}
        default.update({key: saved[key] for key in ("mean", "std", "input_size") if key in saved})
    return default


def _unknown_architecture(spec: EncoderSpec) -> GalaxyError:
    return GalaxyError(f"{spec.name}: timm has no architecture {spec.architecture!r}; "
                       f"`python -c \"import timm; print(timm.list_models('*nano*'))\"` lists them")


def _weights_repo(spec: EncoderSpec, hf_hub_id: str | None) -> str:
    repo = spec.repo or hf_hub_id
    if not repo:
        raise GalaxyError(f"{spec.name}: timm publishes no Hugging Face weights for it; set weights = FILE or "
                          f"pretrained = false")
    return repo


def check_encoder(name: str, pretrained: bool, weights: Path | None) -> None:
    """What building the encoder would fail on, found without building it (no weights are read or fetched):
    an architecture timm lacks, a weights file that is not there, published weights neither cached nor
    reachable."""
    import timm

    spec = encoder_spec(name)
    if not timm.is_model(spec.architecture):
        raise _unknown_architecture(spec)
    if weights is not None:
        if not weights.is_file():
            raise GalaxyError(f"{name}: weights = {str(weights)!r} is not a file")
    elif pretrained:
        published = timm.get_pretrained_cfg(spec.architecture, allow_unregistered=True)
        _cached_weights_or_online(spec, _weights_repo(spec, getattr(published, "hf_hub_id", None)))


def build_encoder_model(name: str, outputs: int, pretrained: bool, weights: Path | None = None) -> EncoderNet:
    import timm

    spec = encoder_spec(name)
    try:
        encoder = timm.create_model(spec.architecture, pretrained=False, num_classes=0, in_chans=spec.in_chans)
    except RuntimeError:  # timm: "Unknown model (...)"
        raise _unknown_architecture(spec) from None
    config_file: Path | None = None
    if weights is not None:
        if not weights.is_file():
            raise GalaxyError(f"{name}: weights = {str(weights)!r} is not a file")
        config_file = weights.parent / "config.json"
        _load_encoder_weights(encoder, weights, spec)
    elif pretrained:
        repo = _weights_repo(spec, encoder.pretrained_cfg.get("hf_hub_id"))
        weights_file, config_file = _cached_or_downloaded(spec, repo)
        _load_encoder_weights(encoder, weights_file, spec)
    cfg = _pretrained_cfg(config_file, encoder)
    size = cfg.get("input_size")
    return EncoderNet(encoder, outputs, list(cfg.get("mean", (0.485, 0.456, 0.406))),
                      list(cfg.get("std", (0.229, 0.224, 0.225))), spec.in_chans, int(size[-1]) if size else None)


def main(argv: list[str] | None = None) -> int:
    """`python -m galaxy_tui.train.encoders NAME [--pretrained] [--weights FILE]`: check_encoder in a process of
    its own, so a launch from the UI (which never imports torch) can refuse a bad encoder before any run exists.
    Exit 2 with the message on stderr when it would fail."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="galaxy_tui.train.encoders")
    parser.add_argument("name")
    parser.add_argument("--pretrained", action="store_true")
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args(argv)
    try:
        check_encoder(args.name, args.pretrained, args.weights)
    except GalaxyError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
