"""Classifying galaxies with a loaded run: images read and prepared as the run's training prepared them
(decode, centre crop, bilinear resize), batched onto the device, optionally averaged over the 8 flips and
quarter turns (with their spread as an uncertainty), optionally with the penultimate layer's features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from galaxy_tui.atomic import atomic_write_bytes
from galaxy_tui.data.images import ImageUnreadable, resize_image
from galaxy_tui.inference.servable import LoadedRun
from galaxy_tui.train.views import dihedral_views

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Item:
    """One galaxy to classify: its id, where it came from (a path, or the dataset's reference) and how to
    read its pixels (uint8 H x W x 3)."""

    id: str
    where: str
    read: Callable[[], np.ndarray]


@dataclass
class Predicted:
    ids: list[str] = field(default_factory=list)
    wheres: list[str] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    spreads: list[np.ndarray] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    distances: list[np.ndarray] = field(default_factory=list)  # from the training galaxies, where the run knows
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    @property
    def output_array(self) -> np.ndarray:
        return np.concatenate(self.outputs) if self.outputs else np.zeros((0, 0), np.float32)

    @property
    def feature_array(self) -> np.ndarray | None:
        return np.concatenate(self.features) if self.features else None

    @property
    def distance_array(self) -> np.ndarray | None:
        return np.concatenate(self.distances) if self.distances else None


def _prepared(item: Item, size: int, crop: float) -> np.ndarray | str:
    try:
        return resize_image(item.read(), size, crop)
    except (ImageUnreadable, OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__


class Forward:
    """The model over one batch: plain or 8-view, with the penultimate features where they are asked for or the
    run can tell how unlike its training galaxies an image is; an out-of-memory error halves the batch."""

    def __init__(self, loaded: LoadedRun, tta: bool, features: bool):
        self.loaded, self.tta = loaded, tta
        self.features = features or loaded.domain is not None

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        try:
            return self._run(images)
        except torch.cuda.OutOfMemoryError:
            if len(images) == 1:
                raise
            torch.cuda.empty_cache()
            halves = [self(part) for part in np.array_split(images, 2)]
            return tuple(None if parts[0] is None else np.concatenate(parts)  # type: ignore[return-value]
                         for parts in zip(*halves))

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        x = torch.from_numpy(images).to(self.loaded.device).permute(0, 3, 1, 2).float()
        captured: list[torch.Tensor] = []
        hook = self.loaded.features_hook(captured) if self.features else None
        try:
            plain = self.loaded.servable(x)
        finally:
            if hook is not None:
                hook.remove()
        features = captured[0].numpy() if captured else None
        if not self.tta:
            return plain.cpu().numpy(), None, features
        views = torch.stack([plain, *(self.loaded.servable(view) for view in dihedral_views(x)[1:])])
        mean = views.mean(0)
        spread = self.loaded.reading.tta_spread(views, mean)
        return mean.cpu().numpy(), spread.cpu().numpy(), features


def predict_items(loaded: LoadedRun, items: Sequence[Item], batch_size: int = 64, tta: bool = False,
                  features: bool = False, progress: Progress | None = None, threads: int = 4) -> Predicted:
    """Every readable item's outputs in the items' order; the unreadable ones listed in `skipped`."""
    result, forward = Predicted(), Forward(loaded, tta, features)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            prepared = list(pool.map(lambda item: _prepared(item, loaded.image_size, loaded.crop), chunk))
            good = [(item, image) for item, image in zip(chunk, prepared) if isinstance(image, np.ndarray)]
            result.skipped += [(item.where, why) for item, why in zip(chunk, prepared) if isinstance(why, str)]
            if good:
                outputs, spread, captured = forward(np.stack([image for _, image in good]))
                result.ids += [item.id for item, _ in good]
                result.wheres += [item.where for item, _ in good]
                result.outputs.append(outputs)
                if spread is not None:
                    result.spreads.append(spread)
                if captured is not None and features:
                    result.features.append(captured)
                if captured is not None and loaded.domain is not None:
                    result.distances.append(loaded.domain.distances(captured))
            if progress:
                progress(min(start + batch_size, len(items)), len(items))
    return result


def prediction_table(loaded: LoadedRun, predicted: Predicted) -> pd.DataFrame:
    """id, path, then the predicted class, its probability and p_<class> (with the calibrated pcal_<class>
    where the run fitted a temperature, left empty for an image unlike the training galaxies) — or
    pred_<answer> for a vote-fraction run — then in_domain and unlike_training where the run can tell, and
    tta_spread."""
    outputs = predicted.output_array
    frame = pd.DataFrame({"id": predicted.ids, "path": predicted.wheres})
    caution = loaded.caution(predicted.distance_array)
    loaded.reading.add_columns(frame, loaded.outputs, outputs, loaded.temperature,
                               None if caution is None else caution.unlike)
    if caution is not None:
        frame["in_domain"] = caution.in_domain.round(4)
        frame["unlike_training"] = caution.unlike
    if predicted.spreads:
        frame["tta_spread"] = np.concatenate(predicted.spreads).round(5)
    return frame


def save_predictions(target: Path, loaded: LoadedRun, predicted: Predicted) -> tuple[pd.DataFrame, list[str]]:
    """The CSV, the features beside it (when asked for) and the skipped files with why; what was written."""
    frame = prediction_table(loaded, predicted)
    atomic_write_bytes(target, frame.to_csv(index=False).encode())
    written = [str(target)]
    if predicted.feature_array is not None:
        feature_file = target.with_suffix(".features.npy")
        np.save(feature_file, predicted.feature_array)
        written.append(f"{feature_file} ({predicted.feature_array.shape[1]} per galaxy, rows as in the CSV)")
    if predicted.skipped:
        skipped_file = target.with_suffix(".skipped.csv")
        atomic_write_bytes(skipped_file, pd.DataFrame(predicted.skipped, columns=["path", "why"])
                           .to_csv(index=False).encode())
        written.append(f"{skipped_file} (the files skipped, with why)")
    return frame, written
