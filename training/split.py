"""Splits by trading date, never by row, with purging: the groundwork of honest evaluation.

A label at day t looks H trading days ahead, so a training row within H days before the
test period (or a validation fold) has seen days that are evaluated: it is purged. After a
validation fold, rows within H days are purged too (their features overlap the fold's
labels' window). Every stock is split on the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class DateSplit:
    train: np.ndarray  # sorted unique trading days used for training
    test: np.ndarray  # the last `test_fraction` of trading days
    purged: np.ndarray  # the days dropped between them


def split_by_date(dates: np.ndarray, horizon: int, test_fraction: float = 0.2) -> DateSplit:
    """Last `test_fraction` of the distinct trading days is the test period; the `horizon`
    days before it are purged from training."""
    days = np.unique(dates)
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    n_test = max(1, round(len(days) * test_fraction))
    first_test = len(days) - n_test
    train_end = max(0, first_test - horizon)
    return DateSplit(days[:train_end], days[first_test:], days[train_end:first_test])


def purged_kfold(days: np.ndarray, k: int, horizon: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K contiguous, time-ordered validation folds over `days`; each fold's training days
    exclude the `horizon` days on either side of it."""
    days = np.unique(days)
    if k < 2 or len(days) < k:
        raise ValueError("need at least 2 folds and one day per fold")
    bounds = np.linspace(0, len(days), k + 1).astype(int)
    folds = []
    for a, b in pairwise(bounds):
        keep = np.ones(len(days), dtype=bool)
        keep[max(0, a - horizon) : min(len(days), b + horizon)] = False
        folds.append((days[keep], days[a:b]))
    return folds


def forward_blocks(
    dates: np.ndarray, n_blocks: int, horizon: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward-chained folds over the distinct dates of `dates` (one per row): block j
    (j >= 1) is predicted by a model fitted on the days before it, less the `horizon` days
    whose labels reach into it. Returns [(fit_rows, predict_rows)] as row indices, for
    blocks 1..n_blocks-1 (block 0 only trains). Block bounds: equal shares of the days."""
    days, inverse = np.unique(dates, return_inverse=True)
    bounds = np.linspace(0, len(days), n_blocks + 1).astype(int)
    out = []
    for a, b in pairwise(bounds[1:]):
        fit = np.flatnonzero(inverse < a - horizon)
        predict = np.flatnonzero((inverse >= a) & (inverse < b))
        if len(fit) and len(predict):
            out.append((fit, predict))
    return out
