"""Why a signal: how far each feature moves today's p_win and p_loss of the whole live model.

For one stock-day row x, feature i's contribution to class c is

    p_c(x) - p_c(x with feature i set to its reference value),

the live model's own probability (the stack of whatever base models it reads, and its
calibrator if any), every other feature as it is: feature ablation against a baseline
(occlusion, Zeiler and Fergus 2014; Captum's `FeatureAblation`). The reference is the
feature's median over the samples the model was trained on (`SignalModel.reference`,
saved by training). One batched prediction of n_features + 1 rows explains a signal,
in probability points, for any stack: since the stack became a weighted mean that often
reads no booster (training/selection.py), the TreeSHAP of LightGBM and XGBoost alone would
explain nothing, or a part of the model. It is not a Shapley decomposition: the
contributions do not add up to p_c(x) - p_c(reference), and a feature whose information a
correlated one also carries (the catalog has several volatility measures) moves little
alone.

Shapes: `x` is one input row, (n_features,) float64 in `input_columns(model)` order (NaN
allowed: the models impute it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockml.defaults import CLASSES, LOSS, WIN


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's value today
    reference: float  # its median over the training samples
    contribution: float  # probability points: p(x) - p(x with this feature at reference)


@dataclass(frozen=True)
class Explanation:
    models: list[str]  # the base models the live stack reads
    p_win: float  # the live model's probabilities for the row
    p_loss: float
    win: list[Contribution]  # largest |contribution| first
    loss: list[Contribution]


def occlusion(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, change): the model's (3,) probabilities for row `x` and the (n_features, 3)
    change of each when that feature alone takes its reference value (p minus the
    occluded probability; 0 where the value already is the reference). Raises ValueError
    when `x` and the reference differ in length."""
    row = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(model.reference, dtype=np.float64)
    if reference.shape != row.shape:
        raise ValueError(f"row has {row.size} features, the reference {reference.size}")
    n = row.size
    occluded = np.tile(row, (n + 1, 1))
    occluded[np.arange(1, n + 1), np.arange(n)] = reference
    proba = model.predict_proba(occluded)
    return proba[0], proba[0] - proba[1:]


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
    """The `top` largest contributions to p_win and to p_loss of the live `model` (a
    training.stack.SignalModel) for row `x`; None when the model was saved without its
    training reference (runs trained before this explanation)."""
    if getattr(model, "reference", None) is None:
        return None
    p, change = occlusion(model, x)
    win, loss = list(CLASSES).index(WIN), list(CLASSES).index(LOSS)
    values = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(model.reference, dtype=np.float64)

    def ranked(scores: np.ndarray) -> list[Contribution]:
        order = np.argsort(-np.abs(scores), kind="stable")[:top]
        return [
            Contribution(names[i], float(values[i]), float(reference[i]), float(scores[i]))
            for i in order
        ]

    return Explanation(
        list(model.stack.names_),
        float(p[win]),
        float(p[loss]),
        ranked(change[:, win]),
        ranked(change[:, loss]),
    )
