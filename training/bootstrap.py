"""Confidence intervals for test-period metrics by a circular block bootstrap over dates.

Rows of one test date (many stocks, one market) share that day's news, and labels of
nearby dates share their future H days, so rows are neither independent nor are dates.
The bootstrap therefore draws whole dates, in blocks of consecutive dates, and every row
of a drawn date comes along: the circular block bootstrap of Politis & Romano (1992),
the wrap-around form of Künsch's (1989) moving block bootstrap, applied to the sequence
of test dates. The interval is the percentile interval (Efron & Tibshirani 1993, ch. 13)
of the statistic over the resamples.

Pure NumPy; the statistic is any function of the resampled arrays returning a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

Statistic = Callable[..., float]


class Interval(NamedTuple):
    """A point estimate on the original rows and its (1 - alpha) bootstrap interval."""

    point: float
    low: float
    high: float


def resampled_rows(
    dates: np.ndarray, n_boot: int, block_days: int | None = None, seed: int = 0
) -> Iterator[np.ndarray]:
    """Row indices of `n_boot` block-bootstrap resamples of `dates`, one int64 array each.

    dates: shape (n,), any sortable dtype (datetime64, int, str); rows need not be sorted.
    Each resample draws ceil(D / b) blocks of b consecutive unique dates (wrapping from the
    last date to the first) with uniform random starts, keeps the first D dates, and
    yields the indices of all rows of those dates, date by date. A resample has D dates but,
    when dates hold different numbers of rows, not necessarily n rows.
    block_days b defaults to round(sqrt(D)) (Hall, Horowitz & Jing 1995 give D^(1/3) as
    the rate for variances; sqrt is the conservative side); pass at least the label horizon
    H so that overlapping labels stay in one block. Deterministic for a given seed.
    Raises ValueError for no rows, n_boot < 1 or block_days < 1.
    """
    if len(dates) == 0:
        raise ValueError("no rows to resample")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    unique, date_of_row = np.unique(np.asarray(dates), return_inverse=True)
    n_dates = len(unique)
    block = max(1, round(np.sqrt(n_dates))) if block_days is None else int(block_days)
    if block < 1:
        raise ValueError(f"block_days must be at least 1, got {block_days}")
    # Rows grouped by date and laid out twice, so that a block of consecutive dates, even
    # one wrapping past the last date, is one contiguous run of this array.
    rows_by_date = np.argsort(date_of_row.ravel(), kind="stable")
    per_date = np.bincount(date_of_row.ravel(), minlength=n_dates)
    first_row = np.concatenate([[0], np.cumsum(np.tile(per_date, 2))])
    n_blocks = -(-n_dates // block)
    dates_in_block = np.full(n_blocks, block)
    dates_in_block[-1] = n_dates - block * (n_blocks - 1)  # the last block is cut at D dates
    return _draw(np.tile(rows_by_date, 2), first_row, dates_in_block, n_boot, seed)


def _draw(
    rows_twice: np.ndarray,
    first_row: np.ndarray,
    dates_in_block: np.ndarray,
    n_boot: int,
    seed: int,
) -> Iterator[np.ndarray]:
    n_dates = (len(first_row) - 1) // 2
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        starts = rng.integers(0, n_dates, len(dates_in_block))
        run_start = first_row[starts]
        run_length = first_row[starts + dates_in_block] - run_start
        # Output row i of a run at offset o is rows_twice[run_start + i - o].
        shift = run_start - (np.cumsum(run_length) - run_length)
        yield rows_twice[np.arange(run_length.sum()) + np.repeat(shift, run_length)]


def block_bootstrap_ci(
    statistic: Statistic,
    dates: np.ndarray,
    *arrays: np.ndarray,
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Point value and (1 - alpha) percentile interval of `statistic(*arrays)` by resampling
    blocks of dates (see `resampled_rows`).

    dates and every array have the same length n (rows); arrays may be 1-D or have rows on
    their first axis. statistic takes the arrays (row-subset, same order) and returns a
    float, e.g. `lambda s, y: np.mean(y[s == 1] == 1)` for the precision of calls.
    Resamples where the statistic is NaN (e.g. no calls drawn) are left out of the
    quantiles; if all are, low and high are NaN. Units are those of the statistic.
    Raises ValueError for mismatched lengths, alpha outside (0, 1), or as resampled_rows.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    arrays = tuple(np.asarray(a) for a in arrays)
    if any(len(a) != len(dates) for a in arrays):
        raise ValueError("every array must have one row per date entry")
    point = float(statistic(*arrays))
    values = np.fromiter(
        (
            statistic(*(a[rows] for a in arrays))
            for rows in resampled_rows(dates, n_boot, block_days, seed)
        ),
        dtype=float,
        count=n_boot,
    )
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Interval(point, np.nan, np.nan)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Interval(point, float(low), float(high))


def difference_ci(
    stat_a: Statistic,
    stat_b: Statistic,
    dates: np.ndarray,
    *arrays: np.ndarray,
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Paired interval of stat_a - stat_b: the lift of A (e.g. the stack) over B (a
    baseline) on the same rows.

    Both statistics are computed on the same resample each time, so what the two share
    (the same dates, the same market) cancels in the difference; an interval that excludes
    0 says the lift is not an accident of which dates the test period happened to hold.
    Arguments, shapes and errors as `block_bootstrap_ci`; the difference of a statistic
    with itself is exactly 0 in every resample.
    """

    def difference(*resampled: np.ndarray) -> float:
        return stat_a(*resampled) - stat_b(*resampled)

    return block_bootstrap_ci(
        difference,
        dates,
        *arrays,
        n_boot=n_boot,
        block_days=block_days,
        alpha=alpha,
        seed=seed,
    )
