"""Block bootstrap over dates: rows of a date move together, intervals cover and widen as
they should, and the paired difference is exact."""

from __future__ import annotations

import numpy as np
import pytest

from training.bootstrap import (
    block_bootstrap_ci,
    date_counts,
    difference_ci,
    ratio_ci,
    ratio_difference_ci,
    resampled_rows,
)
from training.metrics import top_decile_precision


def days(n: int) -> np.ndarray:
    return np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-01-04") + n)


def slow_resampled_rows(dates, n_boot, block_days, seed):
    """The same draws as resampled_rows, date by date in a Python loop."""
    unique = np.unique(dates)
    n = len(unique)
    n_blocks = -(-n // block_days)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        starts = rng.integers(0, n, n_blocks)
        drawn = [(s + j) % n for s in starts for j in range(block_days)][:n]
        yield np.concatenate([np.flatnonzero(dates == unique[d]) for d in drawn])


@pytest.mark.parametrize("block_days", [1, 2, 3, 7, 11, 30])
def test_resamples_match_a_slow_reference(block_days):
    """Unsorted dates with 0-4 rows each: same rows, same order as the loop reference."""
    rng = np.random.default_rng(5)
    dates = rng.choice(days(11), 30)
    fast = list(resampled_rows(dates, 20, block_days, seed=9))
    slow = list(slow_resampled_rows(dates, 20, block_days, seed=9))
    for f, s in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(f, s)


def test_rows_of_a_date_always_move_together():
    """Every drawn date brings all of its rows: per-date counts are multiples of the original."""
    dates = np.repeat(days(50), np.arange(1, 51))
    for rows in resampled_rows(dates, 50, 4, seed=1):
        drawn, counts = np.unique(dates[rows], return_counts=True)
        original = np.searchsorted(days(50), drawn) + 1
        assert (counts % original == 0).all()
        assert (counts // original).sum() == 50  # D dates per resample


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    """Mean of 60 dates x 8 rows with a shared per-date shock (true mean 0): the date-level
    bootstrap interval contains 0 in 90-99% of 200 independent samples."""
    dates = np.repeat(days(60), 8)
    covered = 0
    for k in range(200):
        rng = np.random.default_rng(100 + k)
        x = np.repeat(rng.normal(0, 1, 60), 8) + rng.normal(0, 1, 480)
        ci = block_bootstrap_ci(np.mean, dates, x, n_boot=400, block_days=1, seed=k)
        covered += ci.low <= 0 <= ci.high
    assert 0.90 <= covered / 200 <= 0.99


def test_interval_widens_when_dates_are_correlated():
    """An AR(1) date effect (phi 0.9) with the same marginal variance as an i.i.d. one gives a
    wider interval for the mean, given blocks long enough to see the dependence."""
    rng = np.random.default_rng(7)
    n, phi = 500, 0.9
    iid = rng.normal(0, 1, n)
    ar = np.empty(n)
    ar[0] = rng.normal()
    for t in range(1, n):
        ar[t] = phi * ar[t - 1] + np.sqrt(1 - phi**2) * rng.normal()
    dates = days(n)
    wide = block_bootstrap_ci(np.mean, dates, ar, n_boot=500, block_days=25)
    narrow = block_bootstrap_ci(np.mean, dates, iid, n_boot=500, block_days=25)
    assert wide.high - wide.low > 2.5 * (narrow.high - narrow.low)


def test_same_seed_same_interval_other_seed_other_interval():
    """Deterministic for a seed, and the seed is really used."""
    rng = np.random.default_rng(0)
    dates = np.repeat(days(40), 5)
    x = rng.normal(size=200)
    a = block_bootstrap_ci(np.mean, dates, x, n_boot=200, seed=3)
    assert a == block_bootstrap_ci(np.mean, dates, x, n_boot=200, seed=3)
    assert a != block_bootstrap_ci(np.mean, dates, x, n_boot=200, seed=4)
    assert a.point == pytest.approx(x.mean())


def test_paired_difference_of_a_statistic_with_itself_is_exactly_zero():
    """Both sides see the same resample, so precision minus itself is 0 everywhere."""
    rng = np.random.default_rng(2)
    dates = np.repeat(days(30), 10)
    signal = rng.integers(-1, 2, 300)
    y = rng.integers(-1, 2, 300)

    def precision(s, y):
        return np.mean(y[s == 1] == 1)

    assert difference_ci(precision, precision, dates, signal, y, n_boot=100) == (0.0, 0.0, 0.0)


def test_paired_difference_sees_a_lift_that_separate_intervals_blur():
    """A = B + 0.1 on every row, B noisy by date: the paired interval is tight around 0.1."""
    rng = np.random.default_rng(4)
    dates = np.repeat(days(80), 20)
    b = np.repeat(rng.normal(0, 1, 80), 20)
    ci = difference_ci(lambda a, b: a.mean(), lambda a, b: b.mean(), dates, b + 0.1, b, n_boot=200)
    assert ci.low == pytest.approx(0.1) and ci.high == pytest.approx(0.1)
    separate = block_bootstrap_ci(np.mean, dates, b, n_boot=200)
    assert separate.high - separate.low > 0.2


def test_nan_resamples_are_left_out():
    """A statistic undefined in some resamples (no calls drawn) still gets an interval."""
    dates = days(20)
    signal = np.r_[1, np.zeros(19)]
    y = np.ones(20)
    ci = block_bootstrap_ci(
        lambda s, y: np.mean(y[s == 1]) if (s == 1).any() else np.nan,
        dates,
        signal,
        y,
        n_boot=100,
        block_days=1,
    )
    assert ci == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "arrays", "match"),
    [
        ({"alpha": 0.0}, (np.ones(3),), "alpha"),
        ({"alpha": 1.0}, (np.ones(3),), "alpha"),
        ({"n_boot": 0}, (np.ones(3),), "n_boot"),
        ({"block_days": 0}, (np.ones(3),), "block_days"),
        ({}, (np.ones(4),), "one row"),
    ],
)
def test_bad_arguments_are_refused(kwargs, arrays, match):
    """Impossible settings and mismatched lengths are programming errors."""
    with pytest.raises(ValueError, match=match):
        block_bootstrap_ci(np.mean, days(3), *arrays, **kwargs)


def test_no_rows_is_refused():
    """An empty test period has nothing to resample."""
    with pytest.raises(ValueError, match="no rows"):
        next(resampled_rows(np.array([], dtype="datetime64[D]"), 10))


@pytest.mark.parametrize("block_days", [1, 7, None])
def test_date_counts_are_the_row_resamples(block_days):
    """Each resample's date counts are how often resampled_rows drew each date (the same
    draws, the wrap past the last date and the cut last block included)."""
    rng = np.random.default_rng(5)
    dates = np.repeat(days(23), rng.integers(1, 5, 23))
    rng.shuffle(dates)
    date_of_row, counts = date_counts(dates, 40, block_days, seed=3)
    unique = np.unique(dates)
    for b, rows in enumerate(resampled_rows(dates, 40, block_days, seed=3)):
        drawn = np.searchsorted(unique, dates[rows])
        per_date = np.bincount(drawn, minlength=len(unique)) / np.bincount(
            date_of_row, minlength=len(unique)
        )
        np.testing.assert_array_equal(counts[b], per_date)


def test_ratio_intervals_equal_the_row_bootstrap():
    """A precision and a mean, and the difference of two precisions, by per-date sums give
    the row bootstrap's point and interval (to rounding); a resample without any taken row
    is left out on both paths."""
    rng = np.random.default_rng(6)
    dates = np.repeat(days(60), 15)
    taken_a, taken_b = rng.random(900) < 0.05, rng.random(900) < 0.2
    hit = rng.random(900) < 0.4
    loss = rng.exponential(1.0, 900)

    def precision(taken, hit):
        return np.mean(hit[taken]) if taken.any() else np.nan

    for num, den, row in (
        (taken_a & hit, taken_a, block_bootstrap_ci(precision, dates, taken_a, hit, n_boot=300)),
        (loss, np.ones(900), block_bootstrap_ci(np.mean, dates, loss, n_boot=300)),
    ):
        fast = ratio_ci(num, den, dates, n_boot=300)
        np.testing.assert_allclose(fast, row, rtol=1e-9)
    row = difference_ci(
        lambda ta, tb, h: precision(ta, h),
        lambda ta, tb, h: precision(tb, h),
        dates,
        taken_a,
        taken_b,
        hit,
        n_boot=300,
    )
    fast = ratio_difference_ci(taken_a & hit, taken_a, taken_b & hit, taken_b, dates, n_boot=300)
    np.testing.assert_allclose(fast, row, rtol=1e-9)


def test_top_decile_precision_takes_the_stable_sort_s_rows():
    """The partition path picks the rows of a stable descending sort, ties at the cut to
    the earlier row, NaN scores last."""
    rng = np.random.default_rng(7)
    for scores in (
        rng.integers(0, 12, 1000).astype(float),  # many ties at the cut
        rng.normal(size=999),
        np.r_[rng.normal(size=50), np.full(5, np.nan)],
    ):
        hit = rng.random(len(scores)) < 0.5
        top = np.argsort(-scores, kind="stable")[: max(1, len(scores) // 10)]
        assert top_decile_precision(scores, hit) == pytest.approx(np.mean(hit[top]), abs=1e-12)
