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

`stockml signals` explains every signal it scores (`explain_rows`, many rows per
prediction) and stores the result (`stockml.store.explanations`), so the symbol page only
reads it: recomputing it per request cost the page seconds under load.

Shapes: `x` is one input row, (n_features,) float64 in `input_columns(model)` order, or
(n_rows, n_features) for `explain_rows` (NaN allowed: the models impute it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from stockml.defaults import CLASSES, LOSS, WIN

TOP = 10  # contributions kept per outcome
CHUNK_ROWS = 40_000  # occluded rows per prediction: bounds memory (40,000 x 202 x 8 B = 65 MB)


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


def _occlude(model, rows: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, change) for each of `rows` (n, f): (n, 3) probabilities and (n, f, 3) changes,
    predicted in chunks of at most CHUNK_ROWS occluded rows."""
    n, f = rows.shape
    per_chunk = max(1, CHUNK_ROWS // (f + 1))
    p = np.empty((n, 3))
    change = np.empty((n, f, 3))
    for start in range(0, n, per_chunk):
        block = rows[start : start + per_chunk]
        occluded = np.repeat(block, f + 1, axis=0).reshape(len(block), f + 1, f)
        occluded[:, np.arange(1, f + 1), np.arange(f)] = reference
        proba = model.predict_proba(occluded.reshape(-1, f)).reshape(len(block), f + 1, 3)
        p[start : start + len(block)] = proba[:, 0]
        change[start : start + len(block)] = proba[:, :1] - proba[:, 1:]
    return p, change


def occlusion(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, change): the model's (3,) probabilities for row `x` and the (n_features, 3)
    change of each when that feature alone takes its reference value (p minus the
    occluded probability; 0 where the value already is the reference). Raises ValueError
    when `x` and the reference differ in length."""
    row = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(model.reference, dtype=np.float64)
    if reference.shape != row.shape:
        raise ValueError(f"row has {row.size} features, the reference {reference.size}")
    p, change = _occlude(model, row[None, :], reference)
    return p[0], change[0]


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


def explain_rows(
    model, x: np.ndarray, names: list[str], top: int = TOP
) -> list[Explanation] | None:
    """The `top` largest contributions to p_win and to p_loss of the live `model` (a
    training.decision.SignalModel) for each row of `x` (n, n_features), in row order; None
    when the model was saved without its training reference (runs trained before this
    explanation). Raises ValueError when the rows and the reference differ in width."""
    if getattr(model, "reference", None) is None:
        return None
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    reference = np.asarray(model.reference, dtype=np.float64)
    if reference.shape != rows.shape[1:]:
        raise ValueError(f"rows have {rows.shape[1]} features, the reference {reference.size}")
    p, change = _occlude(model, rows, reference)
    win, loss = list(CLASSES).index(WIN), list(CLASSES).index(LOSS)
    models = list(model.stack.names_)

    def ranked(values: np.ndarray, scores: np.ndarray) -> list[Contribution]:
        order = np.argsort(-np.abs(scores), kind="stable")[:top]
        return [
            Contribution(names[i], float(values[i]), float(reference[i]), float(scores[i]))
            for i in order
        ]

    return [
        Explanation(
            models,
            float(p[k, win]),
            float(p[k, loss]),
            ranked(rows[k], change[k, :, win]),
            ranked(rows[k], change[k, :, loss]),
        )
        for k in range(len(rows))
    ]


def explain(model, x: np.ndarray, names: list[str], top: int = TOP) -> Explanation | None:
    """`explain_rows` for one row `x` (n_features,)."""
    found = explain_rows(model, np.asarray(x, dtype=np.float64).ravel()[None, :], names, top)
    return None if found is None else found[0]


def explain_signals(
    model, signals: pl.DataFrame, x: np.ndarray, names: list[str], top: int = TOP
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of `signal_explanations` and `signal_contributions` for scored `signals`
    (run_id, symbol, date, ... one row per row of `x`, in the same order): each signal's
    `top` contributions toward win and toward loss, ranked from 1. A model saved without
    its training medians gets explanation rows with the reason in `note` and no
    contributions."""
    explained = explain_rows(model, x, names, top)
    keys = signals.select("run_id", "symbol", "date")
    models = list(model.stack.names_)
    note = None
    if explained is None:
        note = (
            "the run's live model was saved without its training medians, which "
            "explanations need (trained by an earlier version): train again"
        )
    heads = keys.with_columns(
        pl.Series("models", [models] * keys.height, dtype=pl.List(pl.String)),
        pl.lit(note, dtype=pl.String).alias("note"),
    )
    rows = []
    for (run_id, symbol, day), found in zip(keys.iter_rows(), explained or [], strict=False):
        for outcome, items in (("win", found.win), ("loss", found.loss)):
            for rank, c in enumerate(items, start=1):
                value = c.value if np.isfinite(c.value) else None
                ref = c.reference if np.isfinite(c.reference) else None
                rows.append(
                    (run_id, symbol, day, outcome, rank, c.feature, value, ref, c.contribution)
                )
    schema = {
        "run_id": pl.String,
        "symbol": pl.String,
        "date": pl.Date,
        "outcome": pl.String,
        "rank": pl.Int16,
        "feature": pl.String,
        "value": pl.Float64,
        "reference": pl.Float64,
        "contribution": pl.Float64,
    }
    return heads, pl.DataFrame(rows, schema=schema, orient="row")
