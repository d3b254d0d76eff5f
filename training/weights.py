"""Sample weights for overlapping labels: each label's average uniqueness.

A 14-day triple-barrier label of day t is decided by the bars of days t+1 .. t+exit_offset,
so the labels of neighbouring days of one stock share most of their outcome: a calm stretch
gives dozens of near-copies of one timeout. Following López de Prado, *Advances in
Financial Machine Learning* (2018), ch. 4.4-4.5: for each stock and trading day d, the
concurrency c_d is the number of that stock's labels whose life includes d; a label's
average uniqueness is the mean of 1 / c_d over its life. Rows are weighted by it (scaled to
mean 1), so a stretch of n overlapping labels counts about as much as its independent
outcomes; within each class, so the classes keep their prior (see `uniqueness_weights`).
"""

from __future__ import annotations

import numpy as np


def average_uniqueness(
    symbols: np.ndarray, day_index: np.ndarray, exit_offset: np.ndarray
) -> np.ndarray:
    """Average uniqueness in (0, 1] of each row's label.

    symbols (n,): any comparable values; day_index (n,) int: the row's trading day as an
    index into the sorted distinct days; exit_offset (n,) int >= 0: trading days from
    entry to exit (a label's life is days day_index+1 .. day_index+exit_offset; a life of
    0 days counts as the entry day alone). Rows need not be sorted. Concurrency is counted
    per symbol (López de Prado ch. 4: labels of one instrument). Raises ValueError on
    mismatched lengths or a negative offset.
    """
    n = len(symbols)
    if not (len(day_index) == len(exit_offset) == n):
        raise ValueError("symbols, day_index and exit_offset must have the same length")
    if n and np.min(exit_offset) < 0:
        raise ValueError("exit_offset must be >= 0")
    start = day_index.astype(np.int64) + (exit_offset > 0)
    end = day_index.astype(np.int64) + np.maximum(exit_offset, 0)  # inclusive
    out = np.empty(n)
    _, group = np.unique(symbols, return_inverse=True)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for rows in np.split(order, bounds):
        lo = int(start[rows].min())
        s, e = start[rows] - lo, end[rows] - lo
        span = int(e.max()) + 2
        concurrency = np.zeros(span)
        np.add.at(concurrency, s, 1.0)
        np.add.at(concurrency, e + 1, -1.0)
        concurrency = np.cumsum(concurrency)[:-1]
        inverse = np.zeros(span)
        inverse[1:] = np.cumsum(1.0 / np.maximum(concurrency, 1.0))
        out[rows] = (inverse[e + 1] - inverse[s]) / (e - s + 1)
    return out


def uniqueness_weights(
    symbols: np.ndarray,
    day_index: np.ndarray,
    exit_offset: np.ndarray,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """`average_uniqueness` scaled to mean 1 (so regularisation set in rows, such as a
    minimum leaf size, keeps its meaning). With `labels`, scaled within each class so every
    class keeps its row count as its total weight: a label's length depends on its outcome
    (a stop or target exits early, a timeout lives the whole horizon and overlaps most), so
    raw uniqueness would tilt the classes' prior towards early exits and miscalibrate every
    model; per class, the weights only move weight from redundant rows to distinct ones.
    Returns (n,) float64; empty in, empty out."""
    u = average_uniqueness(symbols, day_index, exit_offset)
    if not len(u):
        return u
    if labels is None:
        return u / u.mean()
    out = np.empty_like(u)
    for c in np.unique(labels):
        mask = labels == c
        out[mask] = u[mask] / u[mask].mean()
    return out


def weights_of(lives: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Uniqueness weights of `rows`, counting only their own labels' overlaps. `lives` is
    (n, 4) int64: symbol code, trading-day index, exit offset and label of every row
    (`training.dataset.Samples.label_lives`)."""
    part = lives[rows]
    return uniqueness_weights(part[:, 0], part[:, 1], part[:, 2], part[:, 3])
