"""Multi-stage moving averages (DEMA, TEMA, TRIMA, KAMA, T3, TRIX) built from nb_common.

Same contract as nb_common: one symbol's 1-D float64 series in, a same-length array out,
NaN during warm-up, TA-Lib's seeding (each EMA stage seeded with the SMA of its first n
inputs, starting where the previous stage's output starts).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import ema_nb, first_valid_nb, nan_like_nb, sma_nb


@njit(cache=True, error_model="numpy")
def dema_nb(x: np.ndarray, n: int) -> np.ndarray:
    e1 = ema_nb(x, n)
    e2 = ema_nb(e1, n)
    return 2.0 * e1 - e2


@njit(cache=True, error_model="numpy")
def tema_nb(x: np.ndarray, n: int) -> np.ndarray:
    e1 = ema_nb(x, n)
    e2 = ema_nb(e1, n)
    e3 = ema_nb(e2, n)
    return 3.0 * e1 - 3.0 * e2 + e3


@njit(cache=True, error_model="numpy")
def trix_nb(x: np.ndarray, n: int) -> np.ndarray:
    """1-day rate of change (percent) of a triple EMA (TA-Lib TRIX)."""
    e3 = ema_nb(ema_nb(ema_nb(x, n), n), n)
    out = nan_like_nb(x)
    for i in range(1, x.shape[0]):
        if not np.isnan(e3[i - 1]):
            out[i] = (e3[i] - e3[i - 1]) / e3[i - 1] * 100.0
    return out


@njit(cache=True, error_model="numpy")
def trima_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Triangular MA: an SMA of an SMA whose lengths split n (TA-Lib TRIMA's weights)."""
    if n % 2 == 1:
        half = (n + 1) // 2
        return sma_nb(sma_nb(x, half), half)
    half = n // 2
    return sma_nb(sma_nb(x, half), half + 1)


@njit(cache=True, error_model="numpy")
def kama_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Kaufman adaptive MA (TA-Lib KAMA: fast 2, slow 30; seeded with the previous close)."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s <= n:
        return out
    fast = 2.0 / 3.0
    slow = 2.0 / 31.0
    diff = fast - slow
    sum_roc = 0.0
    for i in range(s + 1, s + n):
        sum_roc += abs(x[i] - x[i - 1])
    prev = x[s + n - 1]
    for i in range(s + n, x.shape[0]):
        sum_roc += abs(x[i] - x[i - 1])
        if i - n - 1 >= s:
            sum_roc -= abs(x[i - n] - x[i - n - 1])
        change = abs(x[i] - x[i - n])
        er = change / sum_roc if sum_roc > 1e-14 else 1.0
        sc = (er * diff + slow) ** 2
        prev = (x[i] - prev) * sc + prev
        out[i] = prev
    return out


@njit(cache=True, error_model="numpy")
def t3_nb(x: np.ndarray, n: int, vfactor: float) -> np.ndarray:
    """Tillson T3: six chained EMAs combined with the volume-factor weights (TA-Lib T3)."""
    e1 = ema_nb(x, n)
    e2 = ema_nb(e1, n)
    e3 = ema_nb(e2, n)
    e4 = ema_nb(e3, n)
    e5 = ema_nb(e4, n)
    e6 = ema_nb(e5, n)
    a = vfactor
    c1 = -a * a * a
    c2 = 3.0 * a * a + 3.0 * a * a * a
    c3 = -6.0 * a * a - 3.0 * a - 3.0 * a * a * a
    c4 = 1.0 + 3.0 * a + a * a * a + 3.0 * a * a
    return c1 * e6 + c2 * e5 + c3 * e4 + c4 * e3
