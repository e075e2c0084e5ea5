"""Gradient boosting on a network's penultimate-layer features: scikit-learn's histogram booster (LightGBM
when installed), its number of trees chosen on the validation galaxies."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss

from galaxy_tui.errors import GalaxyError

BOOSTERS = ("histgb", "lightgbm")
MAX_TREES = 200


@dataclass
class Boosted:
    """Class probabilities for the validation and test galaxies at the number of trees validation chose."""

    val: np.ndarray
    test: np.ndarray
    trees: int


def _full(probabilities: np.ndarray, seen: np.ndarray, classes: int) -> np.ndarray:
    """Columns for every class, in order (a class absent from the training galaxies gets 0)."""
    full = np.zeros((len(probabilities), classes))
    full[:, seen.astype(int)] = probabilities
    return full


def boost_classifier(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                     test_features: np.ndarray, classes: int, booster: str = "histgb", seed: int = 0) -> Boosted:
    if booster not in BOOSTERS:
        raise GalaxyError(f"--booster {booster!r}: choose one of {', '.join(BOOSTERS)}.")
    if booster == "lightgbm":
        return _lightgbm(train, val, test_features, classes, seed)
    model = HistGradientBoostingClassifier(max_iter=MAX_TREES, learning_rate=0.1, early_stopping=False,
                                           random_state=seed)
    model.fit(*train)
    labels = list(range(classes))
    val_stages = [_full(p, model.classes_, classes) for p in model.staged_predict_proba(val[0])]
    losses = [log_loss(val[1], p, labels=labels) for p in val_stages]
    best = int(np.argmin(losses))
    test_stage = next(p for k, p in enumerate(model.staged_predict_proba(test_features)) if k == best)
    return Boosted(val_stages[best], _full(test_stage, model.classes_, classes), best + 1)


def _lightgbm(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test_features: np.ndarray,
              classes: int, seed: int) -> Boosted:
    try:
        import lightgbm  # optional extra
    except (ImportError, OSError) as exc:  # OSError: installed, but its OpenMP library (libgomp) is missing
        raise GalaxyError(f"--booster lightgbm needs LightGBM ({exc}): pip install 'galaxy-tui[boost]' "
                          f"(or use --booster histgb, which scikit-learn brings).") from None
    model = lightgbm.LGBMClassifier(n_estimators=MAX_TREES, learning_rate=0.1, random_state=seed, verbose=-1)
    # LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns); earlier 4.x know only eval_set
    validation = {"eval_X": val[0], "eval_y": val[1]} if "eval_X" in inspect.signature(model.fit).parameters \
        else {"eval_set": [val]}
    model.fit(*train, **validation, callbacks=[lightgbm.early_stopping(20, verbose=False)])
    trees = int(model.best_iteration_ or MAX_TREES)
    return Boosted(_full(model.predict_proba(val[0], num_iteration=trees), model.classes_, classes),
                   _full(model.predict_proba(test_features, num_iteration=trees), model.classes_, classes), trees)
