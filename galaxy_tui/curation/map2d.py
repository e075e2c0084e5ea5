"""A 2-D map of the embedding: its first two principal components (always), or UMAP's layout where the optional
extra `umap-learn` is installed and asked for."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from galaxy_tui.errors import GalaxyError


def pca_map(vectors: np.ndarray, seed: int = 0) -> pd.DataFrame:
    xy = PCA(2, random_state=seed).fit_transform(np.asarray(vectors, dtype=np.float32))
    return pd.DataFrame({"x": np.round(xy[:, 0], 5), "y": np.round(xy[:, 1], 5)})


def umap_map(vectors: np.ndarray, seed: int = 0) -> pd.DataFrame:
    try:
        import umap
    except ImportError:
        raise GalaxyError("UMAP needs the optional extra: pip install 'galaxy-tui[umap]'; the PCA map needs "
                          "nothing.") from None
    xy = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(np.asarray(vectors, np.float32))
    return pd.DataFrame({"x": np.round(xy[:, 0], 5), "y": np.round(xy[:, 1], 5)})
