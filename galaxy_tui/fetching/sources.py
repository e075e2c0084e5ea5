"""Where the public datasets come from: one table, the files of each with their checksum where the publisher gives
one, and the dataset entry a fetch registers. README's table is this one. GZ2's table and images are published without
checksums (Zenodo gives md5s only on its pages): a fetch records their sha256 in SOURCE.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceFile:
    url: str
    sha256: str | None   # None: the publisher gives none; the file's own is recorded after the fetch
    gunzip: bool = False  # a .gz the dataset reads unpacked
    unzip_to: str = ""    # a .zip of images the dataset reads as one folder of that name (its inner folders flattened)
    extract: str = ""     # a .zip holding the one file of that name the dataset reads

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def unpacked(self) -> str:
        return self.unzip_to or self.extract or (self.name.removesuffix(".gz") if self.gunzip else self.name)

    @property
    def packed(self) -> bool:
        return self.gunzip or bool(self.unzip_to or self.extract)

    @property
    def unpacked_factor(self) -> int:
        """Room the unpacked file takes as a multiple of the download (JPEGs and PNGs do not shrink in a zip; a
        table in a .gz or a .zip does, about threefold)."""
        return 3 if self.gunzip or self.extract else 1


@dataclass(frozen=True)
class Source:
    name: str
    what: str
    files: tuple[SourceFile, ...]
    dataset: dict[str, Any]  # the [datasets.NAME] table, paths relative to the fetched folder
    approx_size: str
    kaggle: str = ""  # the Kaggle competition the files come from, through the Kaggle CLI (without --mirror)


DECALS_FILES = "https://zenodo.org/records/4573248/files"
KAGGLE_FILES = "https://www.kaggle.com/competitions/galaxy-zoo-the-galaxy-challenge/data"

SOURCES: dict[str, Source] = {source.name: source for source in (
    Source("galaxy10-decals", "Galaxy10 DECaLS (Leung & Bovy): 17,736 galaxies at 256 px in 10 classes, one .h5",
           (SourceFile("https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
                       "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"),),
           {"kind": "galaxy10-h5", "path": "Galaxy10_DECals.h5"}, "2.7 GB"),
    Source("galaxy-mnist", "GalaxyMNIST (Walmsley): 10,000 galaxies at 64 px in 4 classes, its own train/test split",
           (SourceFile("http://www.jb.man.ac.uk/research/MiraBest/MiraBest_F/train_dataset.hdf5.gz", None, True),
            SourceFile("http://www.jb.man.ac.uk/research/MiraBest/MiraBest_F/test_dataset.hdf5.gz", None, True)),
           {"kind": "galaxy-mnist-h5", "train": "train_dataset.hdf5", "test": "test_dataset.hdf5"}, "0.1 GB"),
    Source("gz2", "Galaxy Zoo 2 (Willett et al. 2013) with Hart et al. (2016)'s debiased vote fractions: the table, "
                  "the file-name mapping and about 240,000 SDSS JPEGs at 424 px",
           (SourceFile("https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz", None, gunzip=True),
            SourceFile("https://zenodo.org/records/3565489/files/gz2_filename_mapping.csv", None),
            SourceFile("https://zenodo.org/records/3565489/files/images_gz2.zip", None, unzip_to="images")),
           {"kind": "gz2-hart16", "catalog": "gz2_hart16.csv", "mapping": "gz2_filename_mapping.csv",
            "images": "images", "crop": 0.75}, "3.3 GB (and as much again while the images are unpacked)"),
    Source("gz-decals5", "Galaxy Zoo DECaLS, the GZD-5 campaign (Walmsley et al. 2022): the volunteers' table "
                         "(fractions, counts and debiased fractions for 10 questions) and the 424 px DECaLS DR5 "
                         "cut-outs of all 314,000 galaxies in four zips, unpacked into one folder",
           (SourceFile(f"{DECALS_FILES}/gz_decals_volunteers_5.csv", None),
            *(SourceFile(f"{DECALS_FILES}/gz_decals_dr5_png_part{part}.zip", None, unzip_to="images")
              for part in range(1, 5))),
           {"kind": "gz-decals5", "catalog": "gz_decals_volunteers_5.csv", "images": "images"},
           "about 100 GB of PNGs, and as much again while a part is unpacked (Zenodo gives the exact sizes)"),
    Source("kaggle-gz2", "The Kaggle Galaxy Zoo challenge (2014): 61,578 SDSS galaxies at 424 px with the 37 "
                         "cumulative vote fractions of the GZ2 tree, through the Kaggle CLI (a token, the rules "
                         "accepted)",
           (SourceFile(f"{KAGGLE_FILES}/training_solutions_rev1.zip", None, extract="training_solutions_rev1.csv"),
            SourceFile(f"{KAGGLE_FILES}/images_training_rev1.zip", None, unzip_to="images_training_rev1")),
           {"kind": "kaggle-gz2", "solutions": "training_solutions_rev1.csv", "images": "images_training_rev1",
            "crop": 0.75}, "1.2 GB (and as much again while the images are unpacked)",
           kaggle="galaxy-zoo-the-galaxy-challenge"),
)}
