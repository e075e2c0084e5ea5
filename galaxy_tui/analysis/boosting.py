"""Gradient boosting on a network's penultimate-layer features: scikit-learn's histogram booster (LightGBM
when installed), its number of trees chosen on the validation galaxies. Classes get one classifier; vote
fractions one regressor per answer, fitted on the galaxies whose catalogue has that answer."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, mean_squared_error

from galaxy_tui.errors import GalaxyError

BOOSTERS = ("histgb", "lightgbm")
MAX_TREES = 200


@dataclass
class Boosted:
    """Class probabilities (or answers) for the validation and test galaxies at the number of trees validation
    chose: one count for a classifier, one per answer for vote fractions."""

    val: np.ndarray
    test: np.ndarray
    trees: tuple[int, ...]


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
    return Boosted(val_stages[best], _full(test_stage, model.classes_, classes), (best + 1,))


def _lightgbm_module():  # noqa: ANN202 (an optional module)
    try:
        import lightgbm  # optional extra
    except (ImportError, OSError) as exc:  # OSError: installed, but its OpenMP library (libgomp) is missing
        raise GalaxyError(f"--booster lightgbm needs LightGBM ({exc}): pip install 'galaxy-tui[boost]' "
                          f"(or use --booster histgb, which scikit-learn brings).") from None
    return lightgbm


def _fit_lightgbm(model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]) -> int:  # noqa: ANN001
    """Fit with early stopping on `val`; the number of trees it kept."""
    lightgbm = _lightgbm_module()
    # LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns); earlier 4.x know only eval_set
    validation = {"eval_X": val[0], "eval_y": val[1]} if "eval_X" in inspect.signature(model.fit).parameters \
        else {"eval_set": [val]}
    model.fit(*train, **validation, callbacks=[lightgbm.early_stopping(20, verbose=False)])
    return int(model.best_iteration_ or MAX_TREES)


def _lightgbm(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test_features: np.ndarray,
              classes: int, seed: int) -> Boosted:
    model = _lightgbm_module().LGBMClassifier(n_estimators=MAX_TREES, learning_rate=0.1, random_state=seed,
                                              verbose=-1)
    trees = _fit_lightgbm(model, train, val)
    return Boosted(_full(model.predict_proba(val[0], num_iteration=trees), model.classes_, classes),
                   _full(model.predict_proba(test_features, num_iteration=trees), model.classes_, classes), (trees,))


def boost_regressors(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                     test_features: np.ndarray, booster: str = "histgb", seed: int = 0) -> Boosted:
    """One regressor per answer (a column of the targets, NaN where the catalogue has none), each stopped
    where its validation error is lowest; an answer no training galaxy has is predicted 0."""
    if booster not in BOOSTERS:
        raise GalaxyError(f"--booster {booster!r}: choose one of {', '.join(BOOSTERS)}.")
    (x_train, y_train), (x_val, y_val) = train, val
    outputs = y_train.shape[1]
    val_out, test_out = np.zeros((len(x_val), outputs)), np.zeros((len(test_features), outputs))
    trees = []
    for k in range(outputs):
        known, val_known = np.isfinite(y_train[:, k]), np.isfinite(y_val[:, k])
        if not known.any():
            trees.append(0)
            continue
        fit = (x_train[known], y_train[known, k])
        if booster == "lightgbm":
            model = _lightgbm_module().LGBMRegressor(n_estimators=MAX_TREES, learning_rate=0.1, random_state=seed,
                                                     verbose=-1)
            chosen = _fit_lightgbm(model, fit, (x_val[val_known], y_val[val_known, k])) if val_known.any() \
                else model.fit(*fit).n_estimators
            val_out[:, k] = model.predict(x_val, num_iteration=chosen)
            test_out[:, k] = model.predict(test_features, num_iteration=chosen)
        else:
            regressor = HistGradientBoostingRegressor(max_iter=MAX_TREES, learning_rate=0.1, early_stopping=False,
                                                      random_state=seed).fit(*fit)
            stages = list(regressor.staged_predict(x_val))
            chosen = 1 + int(np.argmin([mean_squared_error(y_val[val_known, k], p[val_known]) for p in stages])) \
                if val_known.any() else len(stages)
            val_out[:, k] = stages[chosen - 1]
            test_out[:, k] = next(p for n, p in enumerate(regressor.staged_predict(test_features), 1) if n == chosen)
        trees.append(chosen)
    return Boosted(val_out, test_out, tuple(trees))


def as_fractions(raw: np.ndarray, slices: list[tuple[int, int]], cumulative: bool) -> np.ndarray:
    """Regressors' answers made fractions again: within [0, 1] and, in a tree of per-question fractions,
    each question's answers summing to 1 (a cumulative tree's sums depend on the answer above: only clipped)."""
    fractions = np.clip(raw, 0.0, 1.0)
    if not cumulative:
        for start, end in slices:
            sums = fractions[:, start:end].sum(1, keepdims=True)
            fractions[:, start:end] = np.where(sums > 0, fractions[:, start:end] / np.where(sums > 0, sums, 1),
                                               1.0 / (end - start))
    return fractions
