"""Model-free baselines, scored exactly like the stack on the same test rows.

A model earns its keep only by beating what needs no model: always predicting the training
period's most common outcome (`majority_proba`), its class frequencies (`prior_proba`),
or ranking stocks by one feature (`ranking_scores`, with the columns in
`BASELINE_FEATURES`; `training.metrics.top_decile_precision` scores them): the most
volatile stocks reach a +/-k% barrier soonest, and recent winners may keep winning.
Probability baselines return (n, 3) matrices in `stockml.defaults.CLASSES` order, so every
metric of the stack applies to them unchanged.
Pure NumPy; no I/O.
"""

from __future__ import annotations

import numpy as np

from stockml.defaults import CLASSES

# Feature columns (features/catalog.csv) ranked as baselines. natr_14 is ATR(14) / close *
# 100 (Wilder); ret_20 is close_t / close_(t-20) - 1, the catalog's 20-day rate of change
# (mom_20 divides by today's close instead and ranks almost identically).
BASELINE_FEATURES = {"baseline_volatility": "natr_14", "baseline_momentum": "ret_20"}


def _class_frequencies(y_train: np.ndarray) -> np.ndarray:
    y_train = np.asarray(y_train)
    if len(y_train) == 0:
        raise ValueError("no training labels to take a baseline from")
    return np.array([np.mean(y_train == c) for c in CLASSES])


def majority_proba(y_train: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) one-hot rows of the training period's most common class, CLASSES order.

    y_train: shape (m,) labels in {-1, 0, +1}. A tie between classes goes to the first in
    CLASSES order (np.argmax), as `training.report.evaluate`'s majority baseline does.
    Raises ValueError for an empty y_train.
    """
    proba = np.zeros((n, len(CLASSES)))
    proba[:, np.argmax(_class_frequencies(y_train))] = 1.0
    return proba


def prior_proba(y_train: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) rows equal to the training period's class frequencies, CLASSES order (each
    row sums to 1 when y_train holds only CLASSES). Raises ValueError for an empty y_train.
    """
    return np.tile(_class_frequencies(y_train), (n, 1))


def ranking_scores(feature_values: np.ndarray, side: int = 1) -> np.ndarray:
    """Scores for ranking rows by one feature: float64 shape (n,), higher = more wanted.

    side +1 ranks the highest values first (calls on momentum or volatility), -1 the
    lowest (puts on momentum). NaN (a feature in warm-up) becomes -inf, so it ranks last
    and is never picked before a row with a value. Raises ValueError for side not +-1.
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side}")
    scores = side * np.asarray(feature_values, dtype=float)
    return np.where(np.isnan(scores), -np.inf, scores)


def baseline_scores(features: dict[str, np.ndarray], side: int = 1) -> dict[str, np.ndarray]:
    """Ranking scores of every baseline in BASELINE_FEATURES, keyed by baseline name.

    features maps column names to shape (n,) arrays (the test rows' feature values) and
    must hold every column of BASELINE_FEATURES; side as in `ranking_scores`.
    Raises KeyError naming a missing column.
    """
    return {
        name: ranking_scores(features[column], side) for name, column in BASELINE_FEATURES.items()
    }
