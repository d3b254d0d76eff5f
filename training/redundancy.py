"""Dropping near-duplicate feature columns, chosen on a fit's training rows only.

The 179 catalog indicators hold whole families that move together (moving averages of
neighbouring lengths, the volatility measures, the oscillators of one window): on the
development universe's rows through 2010, 64 of the 202 columns have a Spearman
correlation of 0.95 or more with an earlier one. Every base model pays for a column in
proportion (the boosters' binning and histograms, the kernel map, the linear models), and
tree models are blind to a monotone change of a column, which is why the rank correlation
is the measure: two columns it calls 0.99 alike offer a tree almost the same splits.

The filter is the first step of a base model (training/models.py), so it learns from the
rows the model learns from and from nothing else, and a fitted model still takes the
full matrix: the stack, the signals and the explanations see no difference.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


def ranks(x: np.ndarray) -> np.ndarray:
    """Each column's ranks 0 .. n-1 (ties broken by position), NaN ranked as the column's
    median row would be: x (n, p) float -> (n, p) float64."""
    out = np.empty(x.shape, dtype=np.float64)
    for j in range(x.shape[1]):
        column = x[:, j]
        present = ~np.isnan(column)
        if present.all():
            out[np.argsort(column, kind="stable"), j] = np.arange(len(column))
            continue
        filled = column.copy()
        filled[~present] = np.median(column[present]) if present.any() else 0.0
        out[np.argsort(filled, kind="stable"), j] = np.arange(len(column))
    return out


def keep_columns(x: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the columns of x (n, p) kept when, in column order, a column is dropped
    if its absolute Spearman correlation with an already kept column is `threshold` or
    more (a constant column correlates with nothing and is kept). Returns (k,) int64,
    ascending. Raises ValueError when threshold is not in (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    r = ranks(x)
    r -= r.mean(axis=0)
    norms = np.sqrt((r * r).sum(axis=0))
    norms[norms == 0] = np.inf  # constant: correlation 0 with everything
    r /= norms
    corr = np.abs(r.T @ r)
    kept: list[int] = []
    for j in range(x.shape[1]):
        if not kept or corr[j, kept].max() < threshold:
            kept.append(j)
    return np.asarray(kept, dtype=np.int64)


class RedundancyFilter(TransformerMixin, BaseEstimator):
    """Keeps the columns `keep_columns` keeps on (at most `sample_rows` of) the rows given
    to `fit`, drawn with `seed`; `threshold` None keeps every column.

    fit(x (n, p)) learns `keep_` (k,) int64; transform(x (m, p)) returns x[:, keep_]
    (x itself when every column is kept). Raises ValueError on a column count other than
    fit's."""

    def __init__(self, threshold: float | None = 0.95, sample_rows: int = 10_000, seed: int = 0):
        self.threshold = threshold
        self.sample_rows = sample_rows
        self.seed = seed

    def fit(self, x, y=None):
        x = validate_data(self, x, dtype=[np.float32, np.float64], ensure_all_finite="allow-nan")
        if self.threshold is None:
            self.keep_ = np.arange(x.shape[1])
            return self
        rows = np.arange(len(x))
        if len(rows) > self.sample_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(rows, self.sample_rows, replace=False))
        self.keep_ = keep_columns(x[rows], self.threshold)
        return self

    def transform(self, x):
        check_is_fitted(self)
        x = validate_data(
            self, x, dtype=[np.float32, np.float64], ensure_all_finite="allow-nan", reset=False
        )
        if len(self.keep_) == x.shape[1]:
            return x
        return np.ascontiguousarray(x[:, self.keep_])
