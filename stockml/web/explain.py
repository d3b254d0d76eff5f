"""Why a signal: TreeSHAP contributions of each feature to today's p_win and p_loss.

The live `SignalModel` stacks several base models under a meta-learner; only its tree
boosters have exact, fast Shapley values built in: LightGBM's `predict(pred_contrib=True)`
and XGBoost's `predict(pred_contribs=True)` (TreeSHAP). For each of those present in the
stack, the contributions to the win class and to the loss class are taken in the model's
raw score (log-odds of the softmax, one score per class), and averaged over the tree
models found. For one model a class's contributions plus its bias sum exactly to that
model's raw score for the class; the stack's meta-learner then mixes these models'
probabilities with the others', so the numbers say which features pushed the tree models
toward or away from a win (a loss), not by how much each moved the final probability.

Shapes: `x` is one input row, (n_features,) float64 in `input_columns(model)` order (NaN
allowed: the boosters route missing values themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockml.defaults import LOSS, WIN


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's value today
    contribution: float  # log-odds units, mean over the tree models


@dataclass(frozen=True)
class Explanation:
    models: list[str]  # the tree models explained (names in the stack)
    win: list[Contribution]  # largest |contribution| first
    loss: list[Contribution]


def tree_contributions(estimator, x: np.ndarray) -> np.ndarray | None:
    """(n_classes, n_features + 1) raw-score contributions (bias last) of one row, with
    classes in the estimator's `classes_` order; None when it is not a LightGBM or XGBoost
    model (or a LabelShift wrapping one)."""
    row = np.asarray(x, dtype=np.float64).reshape(1, -1)
    inner = getattr(estimator, "estimator_", estimator)  # training.models.LabelShift
    n_classes = len(estimator.classes_)
    booster_ = getattr(inner, "booster_", None)
    if booster_ is not None and type(booster_).__module__.startswith("lightgbm"):
        flat = np.asarray(booster_.predict(row, pred_contrib=True))
        return flat.reshape(n_classes, -1)
    get_booster = getattr(inner, "get_booster", None)
    if get_booster is not None and type(inner).__module__.startswith("xgboost"):
        import xgboost

        out = get_booster().predict(xgboost.DMatrix(row), pred_contribs=True)
        return np.asarray(out, dtype=np.float64).reshape(n_classes, -1)
    return None


def input_columns(model) -> list[str] | None:
    """The feature names of the model's input, in order: `model.columns` when the model
    records them; else (models saved before it did) the catalog's columns, then the
    context columns when the width the base models were fitted on says so; None when the
    width matches neither."""
    from features.catalog import COLUMNS

    if getattr(model, "columns", None):
        return list(model.columns)
    widths = [getattr(e, "n_features_in_", None) for e in model.stack.estimators_]
    width = next((w for w in widths if w is not None), len(COLUMNS))
    if width == len(COLUMNS):
        return list(COLUMNS)
    try:
        from features.context import CONTEXT_COLUMNS
    except ImportError:
        return None
    return [*COLUMNS, *CONTEXT_COLUMNS] if width == len(COLUMNS) + len(CONTEXT_COLUMNS) else None


def explain(model, x: np.ndarray, names: list[str], top: int = 10) -> Explanation | None:
    """The `top` largest contributions to the win and the loss class of the tree models
    in `model.stack` (a training.stack.SignalModel); None when it has no tree booster."""
    stack = model.stack
    per_model, used = [], []
    for name, estimator in zip(stack.names_, stack.estimators_, strict=True):
        contrib = tree_contributions(estimator, x)
        if contrib is None:
            continue
        classes = list(np.asarray(estimator.classes_))
        per_model.append(contrib[[classes.index(WIN), classes.index(LOSS)], :-1])
        used.append(name)
    if not per_model:
        return None
    mean = np.mean(per_model, axis=0)  # (2, n_features)
    values = np.asarray(x, dtype=np.float64).ravel()

    def ranked(scores: np.ndarray) -> list[Contribution]:
        order = np.argsort(-np.abs(scores), kind="stable")[:top]
        return [Contribution(names[i], float(values[i]), float(scores[i])) for i in order]

    return Explanation(used, ranked(mean[0]), ranked(mean[1]))
