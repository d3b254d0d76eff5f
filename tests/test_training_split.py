"""Date splits and purged K-fold: no training label can see an evaluated day."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.split import purged_kfold, split_by_date


def trading_days(n: int) -> np.ndarray:
    return np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + n)


@given(n=st.integers(30, 600), horizon=st.integers(1, 20))
def test_test_period_is_the_last_fifth_and_purged(n, horizon):
    """Test = the last 20% of days; no training day lies within H days before it."""
    days = trading_days(n)
    rows = np.repeat(days, 3)  # three stocks share the dates
    split = split_by_date(rows, horizon)
    assert len(split.test) == round(n * 0.2)
    assert (split.test == days[n - len(split.test) :]).all()
    if len(split.train):
        gap = np.searchsorted(days, split.test[0]) - np.searchsorted(days, split.train[-1])
        assert gap > horizon
    assert len(split.train) + len(split.purged) + len(split.test) == n


@given(n=st.integers(40, 400), k=st.integers(2, 6), horizon=st.integers(0, 14))
def test_purged_folds_cover_every_day_once_and_keep_their_distance(n, k, horizon):
    """Validation folds partition the days in time order; each fold's training days are
    more than H days away from it on both sides."""
    days = trading_days(n)
    folds = purged_kfold(days, k, horizon)
    validation = np.concatenate([v for _, v in folds])
    assert (validation == days).all()
    for train, valid in folds:
        position = np.searchsorted(days, train)
        lo, hi = np.searchsorted(days, valid[0]), np.searchsorted(days, valid[-1])
        assert ((position < lo - horizon) | (position > hi + horizon)).all()


@pytest.mark.parametrize(("k", "n"), [(1, 10), (5, 3)])
def test_impossible_fold_counts_are_refused(k, n):
    """Fewer than two folds, or more folds than days, is a programming error."""
    with pytest.raises(ValueError):
        purged_kfold(trading_days(n), k, 2)
