"""Every score of a run, in one module that imports no model: log loss, classification
scores, Brier scores, top-decile precision and the trade figures `model_metrics` stores.

Probability matrices are (n, 3) with the columns of `stockml.defaults.CLASSES` (loss,
timeout, win); labels are (n,) in {-1, 0, +1}; signals are the int8 codes of
`training.trades` (+1 BUY CALL, -1 BUY PUT, 0 HOLD). Pure NumPy (and sklearn's metric
functions); no I/O.
"""

from __future__ import annotations

import warnings

import numpy as np

from stockml.defaults import CLASS_NAMES as NAMES
from stockml.defaults import CLASSES, WIN_COL
from training.trades import CALL, PUT


def log_loss3(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class, (n, 3) in CLASSES order, clipped at
    1e-12 (sklearn's log_loss for three fixed labels, without its input checks: fast
    enough to call in every bootstrap resample)."""
    picked = proba[np.arange(len(y)), np.searchsorted(CLASSES, y)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def brier(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Brier score per class, (3,): mean squared error of p_c against 1{y = c} (Brier
    1950; summed over the classes it is the multi-class Brier score)."""
    onehot = (y[:, None] == CLASSES[None, :]).astype(float)
    return ((proba - onehot) ** 2).mean(axis=0)


def top_decile_precision(scores: np.ndarray, hit: np.ndarray) -> float:
    """Share of `hit` among the max(1, n // 10) highest scores: the precision of the 10%
    most confident calls, the report's `top10_win_precision` definition.

    scores: shape (n,) (use `training.baselines.ranking_scores` for features, p_win for a
    model); hit: shape (n,) bool (e.g. y == 1). Rows are taken as
    `np.argsort(-scores, kind="stable")`, so ties at the cut go to the earlier row; the
    plain np.argsort (quicksort) of `evaluate` leaves that order unspecified, which only
    matters for tied scores. Returns NaN for n = 0. Raises ValueError on mismatched lengths.
    """
    scores = np.asarray(scores, dtype=float)
    hit = np.asarray(hit, dtype=bool)
    if scores.shape != hit.shape:
        raise ValueError("scores and hit must have one value per row")
    if len(scores) == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[: max(1, len(scores) // 10)]
    return float(np.mean(hit[top]))


def evaluate(y: np.ndarray, proba: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, log loss, per-class precision/recall, the
    majority-class baseline (from the training period's labels `y_train`), the precision
    of the 10% most confident win calls, Brier scores and the confusion counts."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 models sum to 1 +- 1e-7
    predicted = CLASSES[proba.argmax(axis=1)]
    with warnings.catch_warnings():
        # A short test window may lack a class: its recall is then undefined, as sklearn says.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, predicted)
    out = {
        "accuracy": accuracy_score(y, predicted),
        "balanced_accuracy": balanced,
        "macro_f1": f1_score(y, predicted, average="macro", labels=CLASSES, zero_division=0),
        "log_loss": log_loss3(y, proba),
    }
    precision, recall, _, _ = precision_recall_fscore_support(
        y, predicted, labels=CLASSES, zero_division=0
    )
    for c, p, r in zip(CLASSES, precision, recall, strict=True):
        out[f"precision_{NAMES[c]}"] = float(p)
        out[f"recall_{NAMES[c]}"] = float(r)
    majority = CLASSES[np.argmax([np.mean(y_train == c) for c in CLASSES])]
    out["majority_baseline"] = float(np.mean(y == majority))
    top = np.argsort(-proba[:, WIN_COL])[: max(1, len(y) // 10)]
    out["top10_win_precision"] = float(np.mean(y[top] == 1))
    out["base_rate_win"] = float(np.mean(y == 1))
    for c, score in zip(CLASSES, brier(proba, y), strict=True):
        out[f"brier_{NAMES[c]}"] = float(score)
    for actual in CLASSES:
        for guess in CLASSES:
            out[f"confusion_{NAMES[actual]}_as_{NAMES[guess]}"] = float(
                np.sum((y == actual) & (predicted == guess))
            )
    return {k: float(v) for k, v in out.items()}


def trade_metrics(signals: np.ndarray, y: np.ndarray, exit_return: np.ndarray) -> dict:
    """call/put precision, coverage and mean exit return (the stock's own return, so a put
    wins when it is negative): the names `model_metrics` stores. All inputs (n,)."""
    out = {}
    for side, name in ((CALL, "call"), (PUT, "put")):
        taken = signals == side
        out[f"{name}_coverage"] = float(np.mean(taken))
        out[f"{name}_precision"] = float(np.mean(y[taken] == side)) if taken.any() else np.nan
        out[f"{name}_mean_exit_return"] = (
            float(np.mean(exit_return[taken])) if taken.any() else np.nan
        )
    return out
