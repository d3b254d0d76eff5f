"""scikit-learn's histogram booster with weighted bin edges computed in one pass.

With sample weights and at most 200,000 rows (its binning sample), scikit-learn 1.9's
`HistGradientBoostingClassifier` places each column's 63 bin edges at weighted
percentiles by calling `sklearn.utils.stats._weighted_percentile` once per edge, each call
sorting the column again: 63 sorts of every column. On 127,628 x 202 rows of the skill
store that binning took 48.5 s against 4.5 s unweighted, while the boosting itself cost
the same (about 20 s either way), so every weighted fit of the booster (the uniqueness
weights of training/weights.py) paid three times its work.

`BinnedBoosting` computes the same edges with one call per column (the function takes
every percentile at once, on the same sorted column, so the edges are equal bit for
bit), replaces each value by its bin number, and fits the booster on those numbers: a
column of at most 63 distinct values, which the booster bins by their midpoints without
any percentile, into the same bins. Trees, splits and predictions are the booster's own
(tests/test_training_binning.py checks predictions equal to the plain booster's). Where
that could differ, it does not pre-bin: without weights, above the binning sample (the
booster then draws a weighted sample, fast), or when a bin would hold no training row.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble._hist_gradient_boosting.common import ALMOST_INF
from sklearn.utils.validation import check_is_fitted

BINNING_SAMPLE = 200_000  # scikit-learn's _BinMapper subsample: above it, no percentiles


def weighted_edges(column: np.ndarray, weight: np.ndarray, max_bins: int) -> np.ndarray:
    """The bin edges scikit-learn's histogram booster gives `column` (n,) float64 with
    `weight` (n,) when it has more than `max_bins` distinct values: the weighted
    "averaged inverted CDF" percentiles at 100 k / max_bins, k = 1 .. max_bins - 1, of its
    non-NaN, non-zero-weight values, duplicates removed, capped at ALMOST_INF; the
    midpoints of its distinct values when it has `max_bins` or fewer; none when one.
    Returns (m,) float64 ascending."""
    from sklearn.utils.stats import _weighted_percentile

    keep = ~np.isnan(column) & (weight != 0)
    values, weight = column[keep], weight[keep]
    order = np.argsort(values)
    values, weight = values[order], weight[order]
    distinct = np.unique(values)
    if len(distinct) <= 1:
        return np.asarray([], dtype=np.float64)
    if len(distinct) <= max_bins:
        edges = (distinct[:-1] + distinct[1:]) / 2
    else:
        percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        edges = np.asarray(_weighted_percentile(values, weight, percentiles, average=True))
        edges = np.unique(edges)
    return np.clip(edges, None, ALMOST_INF)


class BinnedBoosting(ClassifierMixin, BaseEstimator):
    """`estimator` (a HistGradientBoostingClassifier) fitted on bin numbers in place of
    values when the fit is weighted and small enough for the booster to bin it by weighted
    percentiles (module docstring); on the values otherwise. fit(x (n, p), y (n,),
    sample_weight (n,) or None); predict_proba(x (m, p)) -> (m, n_classes)."""

    def __init__(self, estimator=None) -> None:
        self.estimator = estimator

    def fit(self, x, y, sample_weight=None):
        self.edges_ = None
        if sample_weight is not None and len(x) <= BINNING_SAMPLE:
            values = np.asarray(x, dtype=np.float64)  # the booster's own dtype (X_DTYPE)
            max_bins = self.estimator.get_params()["max_bins"]
            weight = np.asarray(sample_weight, dtype=np.float64)
            edges = [weighted_edges(values[:, j], weight, max_bins) for j in range(x.shape[1])]
            codes = self._codes(values, edges)
            if self._every_bin_used(codes, edges, weight):
                self.edges_, x = edges, codes
        self.estimator_ = clone(self.estimator).fit(x, y, sample_weight=sample_weight)
        self.classes_ = self.estimator_.classes_
        return self

    @staticmethod
    def _codes(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
        """Each value's bin number as the booster numbers its bins (bin i holds
        edges[i-1] < v <= edges[i]); NaN stays NaN."""
        out = np.empty(x.shape, dtype=np.float64)
        for j, cut in enumerate(edges):
            out[:, j] = np.searchsorted(cut, x[:, j], side="left")
        out[np.isnan(x)] = np.nan
        return out

    @staticmethod
    def _every_bin_used(codes: np.ndarray, edges: list[np.ndarray], weight) -> bool:
        """Whether every bin of every column holds a weighted training row: otherwise the
        booster would number the bins of the codes differently from those of the values."""
        rows = codes[weight != 0]
        for j, cut in enumerate(edges):
            column = rows[:, j]
            present = np.unique(column[~np.isnan(column)])
            if len(present) != len(cut) + 1:
                return False
        return True

    def _inputs(self, x):
        if self.edges_ is None:
            return x
        return self._codes(np.asarray(x, dtype=np.float64), self.edges_)

    def predict_proba(self, x):
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._inputs(x))

    def predict(self, x):
        check_is_fitted(self)
        return self.estimator_.predict(self._inputs(x))
