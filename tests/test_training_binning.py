"""OnePassHistGradientBoosting is scikit-learn's histogram booster to the bit, only cheaper
to bin."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

from training.binning import OnePassBinMapper, OnePassHistGradientBoosting, weighted_edges


def awkward(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns of every kind the booster bins differently: continuous, heavily tied,
    few distinct values, constant, with NaN; weights with zeros; three classes."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            np.round(rng.normal(size=n), 1),  # ties
            rng.integers(0, 10, n).astype(float),  # 10 distinct values
            np.full(n, 3.0),  # constant
            np.where(rng.random(n) < 0.2, np.nan, rng.exponential(size=n)),  # NaN
        ]
    ).astype(np.float32)
    y = np.digitize(x[:, 0] + 0.5 * x[:, 2] / 10 + rng.normal(scale=0.8, size=n), [-0.5, 0.5])
    w = rng.uniform(0.2, 2.0, n)
    w[rng.random(n) < 0.01] = 0.0
    return x, y - 1, w


def test_weighted_edges_are_the_boosters_own():
    """Each column's edges equal those scikit-learn's binning computes with the weights,
    bit for bit, on every kind of column."""
    x, _, w = awkward(20_000)
    mapper = _BinMapper(n_bins=64, random_state=0).fit(x.astype(np.float64), sample_weight=w)
    for j in range(x.shape[1]):
        mine = weighted_edges(x[:, j].astype(np.float64), w, 63)
        assert np.array_equal(mine, mapper.bin_thresholds_[j]), j


@pytest.mark.parametrize("weighted", [True, False])
def test_predictions_are_the_plain_boosters(weighted):
    """Weighted, the one-pass mapper bins the training rows (to the plain booster's edges,
    every column) and the fit predicts exactly what the plain booster predicts; unweighted
    the mapper's own scikit-learn path runs, with the same result."""
    x, y, w = awkward(30_000)
    test, _, _ = awkward(5_000, seed=1)
    settings = dict(
        max_iter=15,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=50,
        max_bins=63,
        early_stopping=False,
        random_state=7,
    )
    weights = w if weighted else None
    plain = HistGradientBoostingClassifier(**settings).fit(x, y, sample_weight=weights)
    fast = OnePassHistGradientBoosting(**settings).fit(x, y, sample_weight=weights)
    assert isinstance(fast._bin_mapper, OnePassBinMapper)
    for mine, theirs in zip(
        fast._bin_mapper.bin_thresholds_, plain._bin_mapper.bin_thresholds_, strict=True
    ):
        assert np.array_equal(mine, theirs)
    assert np.array_equal(
        fast._bin_mapper.n_bins_non_missing_, plain._bin_mapper.n_bins_non_missing_
    )
    assert np.array_equal(fast.predict_proba(test), plain.predict_proba(test))
    assert np.array_equal(fast.classes_, plain.classes_)
