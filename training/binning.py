"""scikit-learn's histogram booster with its weighted bin edges computed in one pass.

With sample weights and at most 200,000 rows (its binning sample), scikit-learn 1.9's
`HistGradientBoostingClassifier` places each column's 63 bin edges at weighted
percentiles by calling `sklearn.utils.stats._weighted_percentile` once per edge, each call
sorting the column again: 63 sorts of every column. On 127,628 x 202 rows of the skill
store that binning took 48.5 s against 4.5 s unweighted, while the boosting itself cost
the same (about 20 s either way), so every weighted fit of the booster (the uniqueness
weights of training/weights.py) paid three times its work.

`OnePassHistGradientBoosting` is that booster with one change: its bin mapper computes
the same edges with one call per column (the function takes every percentile at once, on
the same sorted column, so the edges are equal bit for bit: 3.7 s instead of 23.6 s on
124,032 x 202 development rows with their uniqueness weights), then bins, boosts and
predicts as scikit-learn does (tests/test_training_binning.py: edges and predictions
equal to the plain booster's). Without weights, above the 200,000-row binning sample (the
booster then draws a weighted sample, fast) or with categorical columns, the mapper is
scikit-learn's own. It overrides two private hooks (`_BinMapper.fit`, `_bin_data`) of the
locked scikit-learn version; the test fails if a new version bins otherwise.

Why not bin the matrix first and boost on bin numbers: with "averaged inverted CDF" edges a
bin can hold no training row, and the booster would number the bin numbers' bins
differently from the values', so a test value in such a bin could be routed otherwise.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import ALMOST_INF


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


class OnePassBinMapper(_BinMapper):
    """scikit-learn's bin mapper, its weighted edges computed by `weighted_edges` (one
    weighted-percentile call per column) when it would compute them by percentiles: with
    sample weights, at most `subsample` rows and no categorical column. Otherwise, and for
    `transform`, the mapper itself."""

    def fit(self, X, y=None, sample_weight=None):
        X = np.asarray(X)
        if (
            sample_weight is None
            or (self.subsample is not None and X.shape[0] > self.subsample)
            or (self.is_categorical is not None and np.any(self.is_categorical))
            or X.dtype != np.float64
        ):
            return super().fit(X, y, sample_weight)
        max_bins = self.n_bins - 1
        weight = np.asarray(sample_weight, dtype=np.float64)
        self.is_categorical_ = np.zeros(X.shape[1], dtype=np.uint8)
        self.missing_values_bin_idx_ = self.n_bins - 1
        self.bin_thresholds_ = [
            weighted_edges(X[:, j], weight, max_bins) for j in range(X.shape[1])
        ]
        self.n_bins_non_missing_ = np.array(
            [len(edges) + 1 for edges in self.bin_thresholds_], dtype=np.uint32
        )
        return self


class OnePassHistGradientBoosting(HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier binning its training data with `OnePassBinMapper`:
    the same parameters, edges, trees and predictions (module docstring)."""

    def _bin_data(self, X, sample_weight, is_training_data):
        if is_training_data and type(self._bin_mapper) is _BinMapper:
            self._bin_mapper = OnePassBinMapper(**self._bin_mapper.get_params())
        return super()._bin_data(X, sample_weight, is_training_data)
