"""The recipes: the experiments that reproduce each workflow this workbench replaces, with the dataset they read,
the figure the original reached and the GPU time to expect. `galaxy-tui recipe NAME` (and the Experiments pane's
`n`) writes one into experiments.toml.

The GPU times are estimates, not measurements: the training images (epochs x galaxies) at a typical training
throughput of each backbone at that image size on one A100-class GPU in bf16, plus the first run's image cache.
The figures are the originals' own, as their authors reported them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from galaxy_tui.errors import GalaxyError


@dataclass(frozen=True)
class RecipeDataset:
    name: str
    table: dict[str, Any]
    where: str  # the comment above it: where the files come from and where to put them


@dataclass(frozen=True)
class RecipeExperiment:
    name: str
    table: dict[str, Any]
    target: str    # the figure to reach, and whose it is
    gpu_time: str  # the estimate, on one A100-class GPU


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    dataset: RecipeDataset
    experiments: tuple[RecipeExperiment, ...]


GZ2 = RecipeDataset("gz2", {
    "kind": "gz2-hart16", "catalog": "data/gz2/gz2_hart16.csv", "mapping": "data/gz2/gz2_filename_mapping.csv",
    "images": "data/gz2/images", "fractions": "debiased", "crop": 0.75},
    "Galaxy Zoo 2, Hart et al. (2016): gz2_hart16.csv and gz2_filename_mapping.csv from data.galaxyzoo.org, the "
    "~240,000 SDSS cut-outs (images_gz2.zip, Zenodo record 3565489) unpacked into data/gz2/images; "
    "`galaxy-tui fetch gz2` puts them here")
GALAXY10 = RecipeDataset("galaxy10-decals", {"kind": "galaxy10-h5",
                                             "path": "data/galaxy10-decals/Galaxy10_DECals.h5"},
                         "Galaxy10 DECaLS (Leung & Bovy, astroNN): Galaxy10_DECals.h5, 17,736 galaxies at 256 px, "
                         "about 2.7 GB; `galaxy-tui fetch galaxy10-decals` puts it here")
GALAXY_MNIST = RecipeDataset("galaxy-mnist", {
    "kind": "galaxy-mnist-h5", "train": "data/galaxy-mnist/train_dataset.hdf5",
    "test": "data/galaxy-mnist/test_dataset.hdf5"},
    "GalaxyMNIST (Walmsley): train_dataset.hdf5 and test_dataset.hdf5, 10,000 galaxies at 64 px in 4 classes; "
    "`galaxy-tui fetch galaxy-mnist` puts them here")
KAGGLE = RecipeDataset("kaggle-gz2", {
    "kind": "kaggle-gz2", "solutions": "data/kaggle-gz2/training_solutions_rev1.csv",
    "images": "data/kaggle-gz2/images_training_rev1"},
    "Kaggle's Galaxy Zoo challenge (galaxy-zoo-the-galaxy-challenge): training_solutions_rev1.csv and "
    "images_training_rev1/ (61,578 JPEGs at 424 px); `galaxy-tui fetch kaggle-gz2` puts them here through the "
    "Kaggle CLI (a Kaggle token, the competition's rules accepted)")
KAGGLE_CENTRE = RecipeDataset("kaggle-gz2-centre", {**KAGGLE.table, "crop": 0.5},
                              KAGGLE.where + "; the same files, the central half of each cut-out as the winner used")

GZ2_LABELS = {"threshold": 0.8, "min_classifications": 10, "max_artifact": 0.5}
BACKBONES = (("resnet50", "about 35 minutes"), ("efficientnet_v2_s", "about 45 minutes"),
             ("convnext_tiny", "about 40 minutes"), ("swin_v2_s", "about 1.5 hours"),
             ("regnet_y_8gf", "about 1 hour 10 minutes"))

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("gz2-resnet18", "GZ2, 3 classes (elliptical, spiral, edge-on) at vote threshold 0.8, ResNet18 at 224 px",
           GZ2, (RecipeExperiment("gz2-resnet18", {
               "dataset": "gz2", "labels": GZ2_LABELS, "model": "resnet18", "image_size": 224, "epochs": 20,
               "optimizer": {"name": "adamw", "lr": 3e-4, "weight_decay": 1e-2}, "sampler": "weighted",
               "micro_batch": "auto", "effective_batch": 256, "precision": "auto"},
               "93.18% test accuracy (the ResNet18 \"Max GPU, No OOM\" notebook)",
               "about 15 minutes (the first run also builds the image cache of the labelled galaxies)"),)),
    Recipe("gz2-backbones", "GZ2's vote fractions, five backbones side by side, then an ensemble",
           GZ2, tuple(RecipeExperiment(f"gz2-{model.replace('_', '-')}", {
               "dataset": "gz2", "task": "vote-fractions", "loss": "mse", "labels": GZ2_LABELS, "model": model,
               "image_size": 224, "epochs": 10, "optimizer": {"name": "adamw", "lr": 3e-4, "weight_decay": 5e-2},
               "micro_batch": "auto", "effective_batch": 128, "early_stopping": 3},
               "the comparison itself (the multi-model notebook kept no single figure): `c` in Results compares "
               "the five, `e` combines them, and the ensemble should beat each one's RMSE",
               gpu_time) for model, gpu_time in BACKBONES)),
    Recipe("galaxy10-cnn", "Galaxy10 DECaLS, 10 classes, the custom 5-block CNN", GALAXY10, (RecipeExperiment(
        "galaxy10-cnn", {
            "dataset": "galaxy10-decals", "model": "galaxy10-cnn", "image_size": 128, "epochs": 60,
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4}, "sampler": "class-weights",
            "scheduler": "plateau", "label_smoothing": 0.1, "grad_clip": 1.0, "early_stopping": 8,
            "micro_batch": "auto", "effective_batch": 64, "split": [0.8, 0.1, 0.1]},
        "84% validation accuracy (the Galaxy10 custom-CNN project)", "about 10 minutes"),)),
    Recipe("galaxy-mnist-zoobot", "GalaxyMNIST, 4 classes, Zoobot's ConvNeXt-nano finetuned", GALAXY_MNIST,
           (RecipeExperiment("galaxy-mnist-zoobot", {
               "dataset": "galaxy-mnist", "model": "zoobot:convnext_nano", "pretrained": True,
               "finetune": {"frozen_epochs": 2, "unfreeze_blocks": "all", "lr_decay": 0.75}, "image_size": 224,
               "epochs": 15, "optimizer": {"name": "adamw", "lr": 1e-4, "weight_decay": 5e-2},
               "micro_batch": "auto", "effective_batch": 128, "early_stopping": 4},
               "88.85% test accuracy (the Zoobot fine-tuning project); needs the encoder in the Hugging Face "
               "cache (hf download mwalmsley/zoobot-encoder-convnext_nano)", "about 5 minutes"),)),
    Recipe("kaggle-gz2-efficientnet", "Kaggle's 37 vote fractions, a plain EfficientNet-B0", KAGGLE,
           (RecipeExperiment("kaggle-gz2-efficientnet", {
               "dataset": "kaggle-gz2", "task": "vote-fractions", "loss": "mse", "model": "efficientnet_b0",
               "image_size": 128, "epochs": 20, "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-2},
               "micro_batch": "auto", "effective_batch": 128},
               "RMSE about 0.23 (the IVP EfficientNet project); `show` gives the mean-answer baseline beside it, "
               "which a run should beat", "about 10 minutes"),)),
    Recipe("kaggle-gz2-cyclic", "Kaggle's 37 vote fractions the winner's way: 16 rotated and mirrored views "
                                "pooled in one network", KAGGLE_CENTRE,
           (RecipeExperiment("kaggle-gz2-cyclic", {
               "dataset": "kaggle-gz2-centre", "task": "vote-fractions", "loss": "mse", "model": "resnet18",
               "image_size": 64, "views": 16, "epochs": 40, "optimizer": {"name": "adamw", "lr": 1e-3,
                                                                          "weight_decay": 1e-2},
               "micro_batch": "auto", "effective_batch": 64, "scheduler": "cosine"},
               "RMSE 0.0749 (the challenge's winner, Dieleman et al. 2015, with an ensemble of such networks); "
               "one network should come near 0.08", "about 1.5 hours (16 views cost 16 galaxies' compute each)"),)),
)}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise GalaxyError(f"no recipe named {name!r}; the recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
