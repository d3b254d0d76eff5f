"""Walk-forward layout and the stacking done inside each test window.

The labelled trading days are cut into consecutive date blocks:

    | block 0 | block 1 | ... | block F-1 | window 1 | window 2 | ... | window K |
    '------------ training period of window 1 ------'

The test windows are calendar years (`yearly_layout`: every year with at least
`min_train_years` years of labelled days before it, the newest partial year included; the
last K of them when K is asked), or, for a history too short for that, K equal windows over
the last 20% of the days (`layout`). `plan_layout` picks: yearly whenever the history has
as many eligible years as windows asked (at least one), else equal windows. Either way the
days before the first window are `inner_blocks` equal blocks.

For every block j >= 1 each base model is fitted once, on the days before block j less the
`horizon` days whose labels reach into it (purge), and predicts block j. That one fit is
shared honestly by everything after it:
- for test window k it is the window's base model (trained only on days before the window);
- its predictions of block j are forward out-of-fold predictions, which the meta-learner of
  every later window (and of the live model) may learn from, because they were made by a
  model that had seen nothing of block j or later.
So each window has its own training period, meta-learner, calibration and thresholds, all
from days that end `horizon` trading days before it starts, at the cost of one base fit per
block instead of a full K-fold procedure per window (which would be K times the fits).

Inside a window, the meta-learner's own probabilities for choosing thresholds are
cross-fitted: purged K-fold over the meta-learner's training days, so the thresholds and
the calibrator are chosen on probabilities the meta-learner made for days it did not see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.split import purged_kfold


@dataclass(frozen=True)
class Layout:
    """Date blocks over the sorted distinct labelled days.

    `bounds[j]:bounds[j + 1]` indexes the days of block j; blocks `first_window` .. end are
    the test windows. `fit_end(j)` is the first day index a model predicting block j must
    not train on (its block start less the purge)."""

    days: np.ndarray
    bounds: np.ndarray
    first_window: int
    horizon: int
    names: tuple[str, ...] = ()  # each test window's name ("2008"; "1".."K" when equal)
    kind: str = "equal"  # "yearly" or "equal"

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    @property
    def windows(self) -> list[int]:
        return list(range(self.first_window, self.n_blocks))

    def fit_end(self, block: int) -> int:
        return max(0, int(self.bounds[block]) - self.horizon)

    def block_of(self, day_index: np.ndarray) -> np.ndarray:
        """Block number of each day index (0 .. n_blocks-1)."""
        return np.searchsorted(self.bounds, day_index, side="right") - 1

    def window_number(self, block: int) -> int:
        """1-based test window number of a block."""
        return block - self.first_window + 1

    def window_name(self, block: int) -> str:
        """The test window's name: its year, or its number when the windows are equal."""
        number = self.window_number(block)
        return self.names[number - 1] if self.names else str(number)

    def describe(self) -> str:
        """The windows in words, for the report."""
        first, last = self.days[self.bounds[self.first_window]], self.days[-1]
        if self.kind == "yearly":
            return (
                f"{len(self.windows)} yearly test windows ({self.names[0]} .. {self.names[-1]},"
                f" {first} .. {last})"
            )
        return f"{len(self.windows)} consecutive test window(s), {first} .. {last}"


def layout(
    dates: np.ndarray,
    horizon: int,
    windows: int = 4,
    inner_blocks: int = 5,
    test_fraction: float = 0.2,
) -> Layout:
    """Blocks for `windows` consecutive test windows covering the last `test_fraction` of the
    distinct days (ending at the last labelled day), after `inner_blocks` equal blocks of the
    days before them. `windows=1` tests exactly the period `split_by_date` does.

    Raises ValueError when there are too few days for the blocks asked."""
    days = np.unique(dates)
    n_test = max(windows, round(len(days) * test_fraction))
    first_test = len(days) - n_test
    # The first block's model must have days to learn from before its purge.
    if windows < 1 or inner_blocks < 2 or first_test // inner_blocks <= horizon:
        raise ValueError(
            f"{len(days)} labelled days are too few for {inner_blocks} training blocks, a "
            f"{horizon}-day purge and {windows} test windows"
        )
    inner = np.linspace(0, first_test, inner_blocks + 1).astype(int)
    tests = np.linspace(first_test, len(days), windows + 1).astype(int)
    names = tuple(str(k) for k in range(1, windows + 1))
    return Layout(days, np.concatenate([inner, tests[1:]]), inner_blocks, horizon, names)


# A year is eligible when the labelled history before it is at least this much shorter
# than `min_train_years` calendar years: labels start some days into a year (the warm-up
# ends mid-January, a listing mid-year), and those days should not cost a window.
ELIGIBLE_SLACK_DAYS = 60


def eligible_years(dates: np.ndarray, min_train_years: int) -> list[int]:
    """The calendar years of `dates` (labelled days) with at least `min_train_years` years
    of labelled days before them (less ELIGIBLE_SLACK_DAYS), in order."""
    days = np.unique(np.asarray(dates, dtype="datetime64[D]"))
    if len(days) == 0:
        return []
    first = days[0]
    years = np.unique(days.astype("datetime64[Y]")).astype(int) + 1970
    needed = first + np.timedelta64(round(365.25 * min_train_years) - ELIGIBLE_SLACK_DAYS, "D")
    return [int(y) for y in years if np.datetime64(f"{y}-01-01") >= needed]


def yearly_layout(
    dates: np.ndarray,
    horizon: int,
    windows: int | None = None,
    inner_blocks: int = 5,
    min_train_years: int = 3,
) -> Layout:
    """One test window per calendar year: every eligible year (`eligible_years`), or the
    last `windows` of them; the days before the first are `inner_blocks` equal blocks.

    Raises ValueError when fewer eligible years than `windows` (or none) exist, or the
    days before the first window are too few for the blocks and the purge."""
    years = eligible_years(dates, min_train_years)
    if windows is not None:
        years = years[-windows:] if windows <= len(years) else []
    if not years:
        raise ValueError(
            f"no calendar year has {min_train_years} years of labelled days before it"
            + (f" for {windows} yearly windows" if windows else "")
        )
    days = np.unique(dates)
    as_days = days.astype("datetime64[D]")
    starts = [int(np.searchsorted(as_days, np.datetime64(f"{y}-01-01"))) for y in years]
    first_test = starts[0]
    if inner_blocks < 2 or first_test // inner_blocks <= horizon:
        raise ValueError(
            f"{first_test} labelled days before {years[0]} are too few for {inner_blocks} "
            f"training blocks and a {horizon}-day purge"
        )
    inner = np.linspace(0, first_test, inner_blocks + 1).astype(int)
    bounds = np.concatenate([inner, starts[1:], [len(days)]]).astype(np.int64)
    names = tuple(str(y) for y in years)
    return Layout(days, bounds, inner_blocks, horizon, names, "yearly")


def plan_layout(
    dates: np.ndarray,
    horizon: int,
    windows: int | None = None,
    inner_blocks: int = 5,
    test_fraction: float = 0.2,
    min_train_years: int = 3,
) -> Layout:
    """Yearly test windows when the history has `windows` eligible years (default: all of
    them, at least one), else `windows` (default 4) equal windows over the last
    `test_fraction` of the days. Raises ValueError when neither fits."""
    if len(eligible_years(dates, min_train_years)) >= (windows or 1):
        try:
            return yearly_layout(dates, horizon, windows, inner_blocks, min_train_years)
        except ValueError:
            pass
    return layout(dates, horizon, windows or 4, inner_blocks, test_fraction)


def meta_rows(lay: Layout, day_index: np.ndarray, block: int | None) -> np.ndarray:
    """Rows whose forward out-of-fold predictions may train the meta-learner of `block`
    (None: the live model, which may use every block from 1 on): rows of blocks 1 ..
    block-1 whose labels end before the block starts."""
    end = len(lay.days) if block is None else lay.fit_end(block)
    return np.flatnonzero((day_index >= lay.bounds[1]) & (day_index < end))


def cross_fitted(
    make_meta,
    oof: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    k: int = 5,
) -> np.ndarray:
    """Out-of-sample meta-learner probabilities for `rows`: purged K-fold over their days,
    each fold predicted by a meta-learner fitted on the other folds (less `horizon` days on
    either side). `make_meta()` returns an unfitted meta-learner. Returns (len(rows), 3)."""
    out = np.empty((len(rows), 3))
    days = day_index[rows]
    for fit_days, valid_days in purged_kfold(np.unique(days), k, horizon):
        fit = np.isin(days, fit_days)
        valid = np.isin(days, valid_days)
        meta = make_meta().fit(oof[rows[fit]], y[rows[fit]])
        out[valid] = meta.predict_proba(oof[rows[valid]])
    return out
