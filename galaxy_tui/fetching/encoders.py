"""`galaxy-tui fetch zoobot:NAME`: a Zoobot encoder's weights and config into the Hugging Face cache (where
`model = "zoobot:NAME"` finds them, also offline later), through huggingface_hub, with its own progress bars."""

from __future__ import annotations

from pathlib import Path

from galaxy_tui.errors import GalaxyError
from galaxy_tui.model_names import ENCODERS, ZOOBOT_REPO, is_encoder_name

FILES = ("model.safetensors", "config.json")


def encoder_repo(name: str) -> str:
    source, _, architecture = name.partition(":")
    if source != "zoobot" or not is_encoder_name(name):
        raise GalaxyError(f"{name!r} is not a Zoobot encoder; fetch zoobot:NAME, e.g. "
                          f"{', '.join(e for e in ENCODERS if e.startswith('zoobot:'))}")
    return ZOOBOT_REPO.format(architecture)


def fetch_encoder(name: str) -> Path:
    """The snapshot folder holding the encoder's files (downloaded, or already in the cache)."""
    from huggingface_hub import constants, snapshot_download

    repo = encoder_repo(name)
    try:
        return Path(snapshot_download(repo, allow_patterns=list(FILES), etag_timeout=10))
    except Exception as exc:  # offline and not cached, no such repository, a proxy: all end the same way
        why = "this machine is offline (or HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else \
            f"it could not be downloaded ({type(exc).__name__})"
        raise GalaxyError(f"{name}: {repo} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}; on a "
                          f"machine with internet run `galaxy-tui fetch {name}` (or `hf download {repo}`) and copy "
                          f"{constants.HF_HUB_CACHE}/models--{repo.replace('/', '--')} into this one's cache") from None
