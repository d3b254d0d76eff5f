"""Hyperparameters chosen on the training period: a small fixed grid per base model.

Each base model has its default settings (training/models.py), one alternative more
strongly regularised (the measured signal is weak: bigger models fit noise) and, when the
run weights rows by label uniqueness (training/weights.py), the default without weights:
López de Prado's weights fix the over-counting of overlapping labels but also shrink the
effective sample, and which matters more is an empirical question per model (on the 82
real stocks the weighted stack's walk-forward log loss was worse: 1.043 against 0.993).
Every candidate is fitted on the inner walk-forward blocks (the days before the first test
window), and the one with the lowest forward out-of-fold log loss on the rows whose labels
end before the first test window is used for every test window and the live model. The
inner-block fits of the default are the ones the run makes anyway, so tuning costs one
extra fit per inner block per alternative, and it never sees a test window (its choice is
made before the first).

A grid, not a search: with 2 cores and a few minutes for the whole run, eight models times
two alternatives is what fits in the budget; the report prints every candidate's log loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.report import log_loss3

# `weighted` is not a model setting: False fits without sample weights (ray_runner.fit_one).
UNWEIGHTED: dict[str, Any] = {"weighted": False}

# model -> candidates; candidate 0 is the default (no overrides). `candidates` appends
# UNWEIGHTED when the run weights its rows.
GRID: dict[str, list[dict[str, Any]]] = {
    "random_forest": [{}, {"min_samples_leaf": 400}],
    "extra_trees": [{}, {"min_samples_leaf": 200}],
    "xgboost": [{}, {"max_depth": 2, "min_child_weight": 50}],
    "lightgbm": [{}, {"num_leaves": 7, "min_child_samples": 600}],
    "gradient_boosting": [{}, {"max_leaf_nodes": 7, "min_samples_leaf": 600}],
    "mlp": [{}, {"alpha": 1.0}],
    "logistic": [{}, {"C": 0.001}],
    "svm": [{}, {"C": 0.005}],
}


def candidates(model: str, weighted: bool = False) -> list[dict[str, Any]]:
    """The model's candidates (default first; an unknown model has only its default), and
    last the default without sample weights when the run is `weighted`."""
    return GRID.get(model, [{}]) + ([UNWEIGHTED] if weighted else [])


def describe(overrides: dict[str, Any]) -> str:
    """'default', 'no weights' or the overrides as k=v, for the report."""
    if not overrides:
        return "default"
    if overrides == UNWEIGHTED:
        return "no weights"
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def tag(index: int) -> str:
    """The suffix a candidate's fits carry in their fold name ('' for the default)."""
    return "" if index == 0 else f"@t{index}"


def as_params(overrides: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(overrides.items()))


def choose(
    predictions: dict[int, np.ndarray], y: np.ndarray, rows: np.ndarray
) -> tuple[int, dict[int, float]]:
    """The candidate with the lowest log loss on `rows` of its (n, 3) out-of-fold
    predictions (NaN where not predicted; `rows` must all be predicted). Ties go to the
    default. Returns (index, {index: log loss})."""
    scores = {i: log_loss3(y[rows], p[rows]) for i, p in predictions.items()}
    best = min(sorted(scores), key=lambda i: (round(scores[i], 6), i))
    return best, scores
