"""An image folder: one sub-folder per class of jpg/png files, optionally merging folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset, ensure_not_empty, fingerprint_of, list_images, require_dir
from galaxy_tui.data.folder_names import class_name_of
from galaxy_tui.data.images import read_image_file
from galaxy_tui.errors import GalaxyError


def load_image_folder(name: str, root: Path, merge: dict[str, list[str]] | None = None,
                      exclude: list[str] | None = None) -> Dataset:
    require_dir(root, "Image")
    merge = merge or {}
    excluded = set(exclude or [])
    try:
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in excluded)
    except OSError as exc:
        raise GalaxyError(f"cannot read the folder {root}: {exc.strerror or exc}; check its permissions.") from None
    if not folders:
        raise GalaxyError(f"{root} has no class sub-folders; an image-folder dataset needs one folder "
                          f"of jpg/png files per class.")
    merged_into = {folder: target for target, members in merge.items() for folder in members}
    unknown = [f for f in merged_into if f not in folders]
    if unknown:
        raise GalaxyError(f"{root}: merge names folder(s) {', '.join(unknown)} that do not exist; "
                          f"folders are {', '.join(folders)}.")
    class_of_folder = {f: merged_into.get(f, class_name_of(f)) for f in folders}
    classes = tuple(dict.fromkeys(class_of_folder[f] for f in folders))
    rows, signature = [], []
    for folder in folders:
        files = list_images(root / folder)
        for file_name in sorted(files):
            stat = files[file_name]
            rows.append((f"{folder}/{Path(file_name).stem}", str(root / folder / file_name),
                         classes.index(class_of_folder[folder])))
            signature.append((folder, file_name, stat.st_size, stat.st_mtime_ns))
    frame = pd.DataFrame(rows, columns=["id", "ref", "label"])
    frame["label"] = frame["label"].astype(np.int8)
    ensure_not_empty(frame, str(root))
    return Dataset(name, "image-folder", frame, classes, read_image_file,
                   fingerprint_of("image-folder", str(root.resolve()), signature), location=str(root))
