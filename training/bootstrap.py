"""Confidence intervals for test-period metrics by a circular block bootstrap over dates.

Rows of one test date (many stocks, one market) share that day's news, and labels of
nearby dates share their future H days, so rows are neither independent nor are dates.
The bootstrap therefore draws whole dates, in blocks of consecutive dates, and every row
of a drawn date comes along: the circular block bootstrap of Politis & Romano (1992),
the wrap-around form of Künsch's (1989) moving block bootstrap, applied to the sequence
of test dates. The interval is the percentile interval (Efron & Tibshirani 1993, ch. 13)
of the statistic over the resamples.

Pure NumPy; the statistic is any function of the resampled arrays returning a float.
A statistic that is a ratio of row sums (a mean, an accuracy, a precision, a log loss) has
a fast path: its per-date sums and, per resample, how often each date was drawn
(`date_counts`, the same draws) give every resample's value in one matrix product, with no
row copied (`ratio_ci`, `ratio_difference_ci`; equal to the row path's up to rounding).
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


def _blocks(
    dates: np.ndarray, n_boot: int, block_days: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(date_of_row (n,), dates_in_block): each row's position among the sorted unique dates
    and how many dates each of a resample's blocks covers (the last cut at D). Raises as
    resampled_rows."""
    if len(dates) == 0:
        raise ValueError("no rows to resample")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    unique, date_of_row = np.unique(np.asarray(dates), return_inverse=True)
    n_dates = len(unique)
    block = max(1, round(np.sqrt(n_dates))) if block_days is None else int(block_days)
    if block < 1:
        raise ValueError(f"block_days must be at least 1, got {block_days}")
    n_blocks = -(-n_dates // block)
    dates_in_block = np.full(n_blocks, block)
    dates_in_block[-1] = n_dates - block * (n_blocks - 1)  # the last block is cut at D dates
    return date_of_row.ravel(), dates_in_block


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
    date_of_row, dates_in_block = _blocks(dates, n_boot, block_days)
    n_dates = int(dates_in_block.sum())
    # Rows grouped by date and laid out twice, so that a block of consecutive dates, even
    # one wrapping past the last date, is one contiguous run of this array.
    rows_by_date = np.argsort(date_of_row.ravel(), kind="stable")
    per_date = np.bincount(date_of_row.ravel(), minlength=n_dates)
    first_row = np.concatenate([[0], np.cumsum(np.tile(per_date, 2))])
    return _draw(np.tile(rows_by_date, 2), first_row, dates_in_block, n_boot, seed)


def date_counts(
    dates: np.ndarray, n_boot: int, block_days: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The resamples of `resampled_rows(dates, n_boot, block_days, seed)` as date counts:
    (date_of_row (n,) int, the position of each row's date among the sorted unique dates;
    counts (n_boot, D) float, how many times resample b drew date d). Same draws, same
    errors as resampled_rows."""
    date_of_row, dates_in_block = _blocks(dates, n_boot, block_days)
    n_dates = int(dates_in_block.sum())
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, n_dates))
    for b in range(n_boot):  # the draws of `_draw`, in its order
        starts = rng.integers(0, n_dates, len(dates_in_block))
        # A run of dates_in_block dates from each start, wrapping: +1 at its first date and
        # -1 after its last on a doubled axis, then summed and folded back onto D dates.
        marks = np.zeros(2 * n_dates + 1)
        np.add.at(marks, starts, 1.0)
        np.add.at(marks, starts + dates_in_block, -1.0)
        doubled = np.cumsum(marks[:-1])
        counts[b] = doubled[:n_dates] + doubled[n_dates:]
    return date_of_row, counts


def _ratio_values(
    num: np.ndarray, den: np.ndarray, date_of_row: np.ndarray, counts: np.ndarray
) -> tuple[float, np.ndarray]:
    """sum(num) / sum(den) on the rows, and on each resample of `counts`."""
    n_dates = counts.shape[1]
    num_by_date = np.bincount(date_of_row, weights=num, minlength=n_dates)
    den_by_date = np.bincount(date_of_row, weights=den, minlength=n_dates)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = num_by_date.sum() / den_by_date.sum() if den_by_date.sum() else np.nan
        values = (counts @ num_by_date) / (counts @ den_by_date)
    return float(point), values


def _interval(point: float, values: np.ndarray, alpha: float) -> Interval:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(point, np.nan, np.nan)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Interval(point, float(low), float(high))


def ratio_ci(
    num: np.ndarray,
    den: np.ndarray,
    dates: np.ndarray,
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    draws: tuple[np.ndarray, np.ndarray] | None = None,
) -> Interval:
    """`block_bootstrap_ci` of the statistic sum(num) / sum(den) over rows, by per-date
    sums: num, den and dates (n,) (e.g. a precision: num = taken & hit, den = taken; a
    mean: den = 1). A resample with no den is left out, as a NaN statistic is there.
    `draws`: `date_counts(dates, n_boot, block_days, seed)` when already made (several
    statistics on the same rows share them). Raises ValueError as block_bootstrap_ci."""
    date_of_row, counts = draws or date_counts(dates, n_boot, block_days, seed)
    point, values = _ratio_values(
        np.asarray(num, float), np.asarray(den, float), date_of_row, counts
    )
    return _interval(point, values, alpha)


def ratio_difference_ci(
    num_a: np.ndarray,
    den_a: np.ndarray,
    num_b: np.ndarray,
    den_b: np.ndarray,
    dates: np.ndarray,
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    draws: tuple[np.ndarray, np.ndarray] | None = None,
) -> Interval:
    """`difference_ci` of two ratio statistics (see `ratio_ci`) on the same rows and the
    same resamples: sum(num_a) / sum(den_a) - sum(num_b) / sum(den_b). `draws` as for
    ratio_ci."""
    date_of_row, counts = draws or date_counts(dates, n_boot, block_days, seed)
    a, values_a = _ratio_values(
        np.asarray(num_a, float), np.asarray(den_a, float), date_of_row, counts
    )
    b, values_b = _ratio_values(
        np.asarray(num_b, float), np.asarray(den_b, float), date_of_row, counts
    )
    return _interval(a - b, values_a - values_b, alpha)


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
