"""The model names an experiment may use. Torch-free, so the registry can validate without torch."""

import re

MODEL_NAMES: dict[str, str] = {
    "tiny-cnn": "3-block CNN for tests and the CPU demo",
    "galaxy10-cnn": "the 5-block custom CNN of the Galaxy10 DECaLS project",
    "resnet18": "torchvision ResNet-18",
    "resnet34": "torchvision ResNet-34",
    "resnet50": "torchvision ResNet-50",
    "efficientnet_b0": "torchvision EfficientNet-B0",
    "efficientnet_v2_s": "torchvision EfficientNet-V2-S",
    "convnext_tiny": "torchvision ConvNeXt-Tiny",
    "convnext_base": "torchvision ConvNeXt-Base",
    "swin_v2_s": "torchvision Swin-V2-S",
    "regnet_y_8gf": "torchvision RegNetY-8GF",
}

# Any timm architecture is `timm:NAME`; Zoobot's galaxy-pretrained encoders are `zoobot:NAME` (the Hugging
# Face repository mwalmsley/zoobot-encoder-NAME). The ones offered by the experiment form, with the
# encoder's parameter count (without the head); zoobot: ones are pretrained on Galaxy Zoo, timm: on ImageNet:
ENCODERS: dict[str, str] = {
    "zoobot:convnext_nano": "15.0 M",
    "zoobot:convnext_pico": "8.5 M",
    "zoobot:convnext_small": "49.5 M",
    "zoobot:convnext_base": "87.6 M",
    "zoobot:efficientnet_b0": "4.0 M",
    "zoobot:resnet50": "23.5 M",
    "zoobot:greyscale-convnext_nano": "15.0 M",
    "timm:convnext_nano": "15.0 M",
    "timm:efficientnetv2_rw_s": "22.1 M",
    "timm:resnet50": "23.5 M",
}
ENCODER_SOURCES = ("timm", "zoobot")
ZOOBOT_REPO = "mwalmsley/zoobot-encoder-{}"  # zoobot:NAME's Hugging Face repository
_ARCHITECTURE = re.compile(r"[A-Za-z0-9_.\-]+")


def is_encoder_name(name: str) -> bool:
    source, _, architecture = name.partition(":")
    return source in ENCODER_SOURCES and bool(_ARCHITECTURE.fullmatch(architecture))


def is_model_name(name: str) -> bool:
    return name in MODEL_NAMES or is_encoder_name(name)
