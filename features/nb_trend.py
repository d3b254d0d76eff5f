"""Directional movement (+DM, -DM, +DI, -DI, DX, ADX, ADXR), Aroon and Parabolic SAR,
with TA-Lib's seeding: sums over the first n-1 moves, then Wilder smoothing from the n-th.
Contract as in nb_common."""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import EPSILON, nan_like_nb


@njit(cache=True, error_model="numpy")
def _moves_nb(h, lo, c):
    """Per-bar +DM, -DM and true range (defined from the second bar)."""
    m = c.shape[0]
    plus = np.zeros(m)
    minus = np.zeros(m)
    tr = np.zeros(m)
    for i in range(1, m):
        up = h[i] - h[i - 1]
        down = lo[i - 1] - lo[i]
        if up > 0 and up > down:
            plus[i] = up
        elif down > 0 and down > up:
            minus[i] = down
        a = h[i] - lo[i]
        b = abs(h[i] - c[i - 1])
        d = abs(lo[i] - c[i - 1])
        t = a
        if b > t:
            t = b
        if d > t:
            t = d
        tr[i] = t
    return plus, minus, tr


@njit(cache=True, error_model="numpy")
def dm_nb(h, lo, c, n: int, plus_side: bool) -> np.ndarray:
    """Wilder-smoothed +DM or -DM (TA-Lib PLUS_DM/MINUS_DM): first value at n-1."""
    plus, minus, _ = _moves_nb(h, lo, c)
    src = plus if plus_side else minus
    out = nan_like_nb(c)
    if c.shape[0] < n:
        return out
    acc = 0.0
    for i in range(1, n):
        acc += src[i]
    out[n - 1] = acc
    for i in range(n, c.shape[0]):
        acc = acc - acc / n + src[i]
        out[i] = acc
    return out


@njit(cache=True, error_model="numpy")
def directional_nb(h, lo, c, n: int):
    """+DI, -DI, DX (first value at n) and ADX (first value at 2n-1)."""
    plus, minus, tr = _moves_nb(h, lo, c)
    m = c.shape[0]
    pdi = nan_like_nb(c)
    mdi = nan_like_nb(c)
    dx = nan_like_nb(c)
    adx = nan_like_nb(c)
    if m <= n:
        return pdi, mdi, dx, adx
    sp = 0.0
    sm = 0.0
    st = 0.0
    for i in range(1, n):
        sp += plus[i]
        sm += minus[i]
        st += tr[i]
    sum_dx = 0.0
    prev_adx = 0.0
    for i in range(n, m):
        sp = sp - sp / n + plus[i]
        sm = sm - sm / n + minus[i]
        st = st - st / n + tr[i]
        if abs(st) >= EPSILON:
            p = 100.0 * (sp / st)
            q = 100.0 * (sm / st)
        else:
            p = 0.0
            q = 0.0
        pdi[i] = p
        mdi[i] = q
        total = p + q
        d = 100.0 * (abs(q - p) / total) if abs(total) >= EPSILON else 0.0
        dx[i] = d
        if i < 2 * n - 1:
            sum_dx += d
        elif i == 2 * n - 1:
            sum_dx += d
            prev_adx = sum_dx / n
            adx[i] = prev_adx
        else:
            prev_adx = (prev_adx * (n - 1) + d) / n
            adx[i] = prev_adx
    return pdi, mdi, dx, adx


@njit(cache=True, error_model="numpy")
def adxr_nb(h, lo, c, n: int) -> np.ndarray:
    adx = directional_nb(h, lo, c, n)[3]
    out = nan_like_nb(c)
    for i in range(n - 1, c.shape[0]):
        if not np.isnan(adx[i - n + 1]):
            out[i] = (adx[i] + adx[i - n + 1]) / 2.0
    return out


@njit(cache=True, error_model="numpy")
def aroon_nb(h, lo, n: int):
    """Aroon up and down over n+1 bars; ties take the most recent extreme (TA-Lib).
    Monotone deques of indices keep the latest extreme at their head."""
    m = h.shape[0]
    up = nan_like_nb(h)
    down = nan_like_nb(h)
    osc = nan_like_nb(h)
    factor = 100.0 / n
    hq = np.empty(m, dtype=np.int64)
    lq = np.empty(m, dtype=np.int64)
    hh = ht = lh = lt = 0
    for i in range(m):
        while ht > hh and h[hq[ht - 1]] <= h[i]:
            ht -= 1
        hq[ht] = i
        ht += 1
        while lt > lh and lo[lq[lt - 1]] >= lo[i]:
            lt -= 1
        lq[lt] = i
        lt += 1
        if hq[hh] < i - n:
            hh += 1
        if lq[lh] < i - n:
            lh += 1
        if i >= n:
            hi_idx = hq[hh]
            lo_idx = lq[lh]
            up[i] = factor * (n - (i - hi_idx))
            down[i] = factor * (n - (i - lo_idx))
            osc[i] = factor * (hi_idx - lo_idx)
    return up, down, osc


@njit(cache=True, error_model="numpy")
def sar_nb(h, lo, accel: float, maximum: float) -> np.ndarray:
    """Parabolic SAR. The first direction follows the first bar's -DM (TA-Lib SAR)."""
    m = h.shape[0]
    out = nan_like_nb(h)
    if m < 2:
        return out
    af = accel
    up = h[1] - h[0]
    down = lo[0] - lo[1]
    long_side = not (down > 0 and down > up)
    if long_side:
        ep = h[1]
        sar = lo[0]
    else:
        ep = lo[1]
        sar = h[0]
    new_low = lo[1]
    new_high = h[1]
    for i in range(1, m):
        prev_low = new_low
        prev_high = new_high
        new_low = lo[i]
        new_high = h[i]
        if long_side:
            if new_low <= sar:
                long_side = False
                sar = ep
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
                out[i] = sar
                af = accel
                ep = new_low
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
            else:
                out[i] = sar
                if new_high > ep:
                    ep = new_high
                    af += accel
                    if af > maximum:
                        af = maximum
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
        else:
            if new_high >= sar:
                long_side = True
                sar = ep
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
                out[i] = sar
                af = accel
                ep = new_high
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
            else:
                out[i] = sar
                if new_low < ep:
                    ep = new_low
                    af += accel
                    if af > maximum:
                        af = maximum
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
    return out
