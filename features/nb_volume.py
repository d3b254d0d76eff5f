"""Volume accumulators (OBV, A/D line, Chaikin A/D oscillator) with TA-Lib's seeding.
Contract as in nb_common."""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import nan_like_nb


@njit(cache=True, error_model="numpy")
def obv_nb(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """On-balance volume, starting at the first bar's volume (TA-Lib OBV)."""
    out = nan_like_nb(c)
    if c.shape[0] == 0:
        return out
    acc = v[0]
    out[0] = acc
    for i in range(1, c.shape[0]):
        if c[i] > c[i - 1]:
            acc += v[i]
        elif c[i] < c[i - 1]:
            acc -= v[i]
        out[i] = acc
    return out


@njit(cache=True, error_model="numpy")
def _ad_step(h: float, lo: float, c: float, v: float) -> float:
    rng = h - lo
    return (((c - lo) - (h - c)) / rng) * v if rng > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def ad_nb(h, lo, c, v) -> np.ndarray:
    """Accumulation/distribution line from the first bar (TA-Lib AD)."""
    out = nan_like_nb(c)
    acc = 0.0
    for i in range(c.shape[0]):
        acc += _ad_step(h[i], lo[i], c[i], v[i])
        out[i] = acc
    return out


@njit(cache=True, error_model="numpy")
def adosc_nb(h, lo, c, v, fast: int, slow: int) -> np.ndarray:
    """Chaikin oscillator: EMA(fast) - EMA(slow) of the A/D line, both EMAs seeded with
    the first A/D value (TA-Lib ADOSC), first output after slow-1 bars."""
    out = nan_like_nb(c)
    m = c.shape[0]
    if m == 0:
        return out
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    ad = _ad_step(h[0], lo[0], c[0], v[0])
    ef = ad
    es = ad
    lookback = (slow if slow > fast else fast) - 1
    for i in range(1, m):
        ad += _ad_step(h[i], lo[i], c[i], v[i])
        ef = (kf * ad) + ((1.0 - kf) * ef)
        es = (ks * ad) + ((1.0 - ks) * es)
        if i >= lookback:
            out[i] = ef - es
    return out
