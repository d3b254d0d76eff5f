"""Oscillators and price-oscillators (RSI, CMO, stochastics, Williams %R, CCI, ULTOSC,
MACD/PPO/APO, MFI) with TA-Lib's seeding. Contract as in nb_common."""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import (
    EPSILON,
    RELATIVE_ZERO,
    ema_nb,
    first_valid_nb,
    max_nb,
    min_nb,
    nan_like_nb,
    sma_nb,
)


@njit(cache=True, error_model="numpy")
def _wilder_gain_loss_nb(x: np.ndarray, n: int, cmo: bool) -> np.ndarray:
    """RSI (cmo=False) or CMO (cmo=True): average gain and loss seeded with the simple
    average of the first n changes, then Wilder's smoothing."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s <= n:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(s + 1, s + n + 1):
        d = x[i] - x[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    gain /= n
    loss /= n
    for i in range(s + n, x.shape[0]):
        if i > s + n:
            d = x[i] - x[i - 1]
            loss *= n - 1
            gain *= n - 1
            if d < 0:
                loss -= d
            else:
                gain += d
            loss /= n
            gain /= n
        total = gain + loss
        if abs(total) < EPSILON:
            out[i] = 0.0
        elif cmo:
            out[i] = 100.0 * ((gain - loss) / total)
        else:
            out[i] = 100.0 * (gain / total)
    return out


@njit(cache=True, error_model="numpy")
def rsi_nb(x: np.ndarray, n: int) -> np.ndarray:
    return _wilder_gain_loss_nb(x, n, np.bool_(False))


@njit(cache=True, error_model="numpy")
def cmo_nb(x: np.ndarray, n: int) -> np.ndarray:
    return _wilder_gain_loss_nb(x, n, np.bool_(True))


@njit(cache=True, error_model="numpy")
def fast_k_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Stochastic fast %K: where the close sits in the k-day range, 0 when flat."""
    hh = max_nb(h, k)
    ll = min_nb(lo, k)
    out = nan_like_nb(c)
    for i in range(c.shape[0]):
        if np.isnan(hh[i]) or np.isnan(ll[i]):
            continue
        diff = (hh[i] - ll[i]) / 100.0
        out[i] = (c[i] - ll[i]) / diff if diff != 0.0 else 0.0
    return out


@njit(cache=True, error_model="numpy")
def willr_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    hh = max_nb(h, n)
    ll = min_nb(lo, n)
    out = nan_like_nb(c)
    for i in range(c.shape[0]):
        if np.isnan(hh[i]):
            continue
        diff = (hh[i] - ll[i]) / -100.0
        out[i] = (hh[i] - c[i]) / diff if diff != 0.0 else 0.0
    return out


@njit(cache=True, error_model="numpy")
def cci_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Commodity channel index: typical price against its mean, in units of 0.015 times
    the mean absolute deviation (TA-Lib CCI, mean recomputed over the window)."""
    out = nan_like_nb(c)
    tp = (h + lo + c) / 3.0
    for i in range(n - 1, c.shape[0]):
        total = 0.0
        for j in range(i - n + 1, i + 1):
            total += tp[j]
        avg = total / n
        dev = 0.0
        for j in range(i - n + 1, i + 1):
            dev += abs(tp[j] - avg)
        num = tp[i] - avg
        # TA-Lib's 0 when the window is flat, flat also when only rounding is left.
        flat = dev <= RELATIVE_ZERO * n * abs(avg)
        out[i] = num / (0.015 * (dev / n)) if num != 0.0 and not flat else 0.0
    return out


@njit(cache=True, error_model="numpy")
def ultosc_nb(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, p1: int, p2: int, p3: int
) -> np.ndarray:
    """Ultimate oscillator: buying pressure over true range on three horizons, 4:2:1."""
    n = c.shape[0]
    out = nan_like_nb(c)
    bp = np.zeros(n)
    tr = np.zeros(n)
    for i in range(1, n):
        true_low = lo[i] if lo[i] < c[i - 1] else c[i - 1]
        true_high = h[i] if h[i] > c[i - 1] else c[i - 1]
        bp[i] = c[i] - true_low
        tr[i] = true_high - true_low
    longest = max(p1, max(p2, p3))
    for i in range(longest, n):
        acc = 0.0
        weights = (4.0, 2.0, 1.0)
        periods = (p1, p2, p3)
        for q in range(3):
            p = periods[q]
            sb = 0.0
            st = 0.0
            for j in range(i - p + 1, i + 1):
                sb += bp[j]
                st += tr[j]
            acc += weights[q] * (sb / st if st != 0.0 else 0.0)
        out[i] = 100.0 * (acc / 7.0)
    return out


@njit(cache=True, error_model="numpy")
def ema_seeded_at_nb(x: np.ndarray, n: int, first_out: int) -> np.ndarray:
    """EMA whose first output is at index `first_out`, seeded with the SMA of the n values
    ending there. TA-Lib's MACD/PPO/APO start the fast EMA where the slow one starts."""
    out = nan_like_nb(x)
    if first_out >= x.shape[0] or first_out - n + 1 < 0:
        return out
    total = 0.0
    for i in range(first_out - n + 1, first_out + 1):
        total += x[i]
    prev = total / n
    out[first_out] = prev
    k = 2.0 / (n + 1)
    for i in range(first_out + 1, x.shape[0]):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


@njit(cache=True, error_model="numpy")
def macd_nb(x: np.ndarray, fast: int, slow: int, signal: int):
    """MACD line, signal and histogram, all starting at TA-Lib's common first index."""
    s = first_valid_nb(x)
    start = s + slow - 1
    fast_ema = ema_seeded_at_nb(x, fast, start)
    slow_ema = ema_seeded_at_nb(x, slow, start)
    line = fast_ema - slow_ema
    sig = ema_seeded_at_nb(line, signal, start + signal - 1)
    first = start + signal - 1
    for i in range(min(first, x.shape[0])):
        line[i] = np.nan
    return line, sig, line - sig


@njit(cache=True, error_model="numpy")
def price_oscillator_nb(x: np.ndarray, fast: int, slow: int, percent: bool) -> np.ndarray:
    """APO (fast EMA - slow EMA) or PPO (as a percent of the slow EMA). Unlike MACD, TA-Lib
    seeds each EMA at its own start here."""
    f = ema_nb(x, fast)
    sl = ema_nb(x, slow)
    out = nan_like_nb(x)
    for i in range(x.shape[0]):
        if np.isnan(sl[i]):
            continue
        if percent:
            out[i] = ((f[i] - sl[i]) / sl[i]) * 100.0 if sl[i] != 0.0 else 0.0
        else:
            out[i] = f[i] - sl[i]
    return out


@njit(cache=True, error_model="numpy")
def mfi_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Money flow index: volume-weighted RSI of the typical price (TA-Lib MFI)."""
    out = nan_like_nb(c)
    m = c.shape[0]
    if m <= n:
        return out
    pos = np.zeros(m)
    neg = np.zeros(m)
    prev = (h[0] + lo[0] + c[0]) / 3.0
    for i in range(1, m):
        tp = (h[i] + lo[i] + c[i]) / 3.0
        d = tp - prev
        # A change within rounding of the two prices counts as no change (TA-Lib's
        # dead zone), so the class of a flat day does not hang on the last bit.
        dead = abs(d) <= EPSILON * (abs(tp) + abs(prev))
        prev = tp
        flow = tp * v[i]
        if dead:
            continue
        if d < 0:
            neg[i] = flow
        elif d > 0:
            pos[i] = flow
    ps = 0.0
    ns = 0.0
    for i in range(1, n + 1):
        ps += pos[i]
        ns += neg[i]
    for i in range(n, m):
        if i > n:
            ps -= pos[i - n]
            ns -= neg[i - n]
            ps += pos[i]
            ns += neg[i]
        total = ps + ns
        out[i] = 0.0 if total < 1.0 else 100.0 * (ps / total)
    return out


@njit(cache=True, error_model="numpy")
def stoch_k_d_nb(h, lo, c, k: int, slow_k: int, slow_d: int):
    """Slow stochastic: %K = SMA(fast %K, slow_k), %D = SMA(%K, slow_d)."""
    fk = fast_k_nb(h, lo, c, k)
    sk = sma_nb(fk, slow_k)
    sd = sma_nb(sk, slow_d)
    first = first_valid_nb(sd)
    for i in range(min(first, c.shape[0])):
        sk[i] = np.nan
    return sk, sd
