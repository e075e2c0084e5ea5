"""The model names an experiment may use. Torch-free, so the registry can validate without torch."""

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
