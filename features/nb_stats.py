"""Features defined by formula, not by TA-Lib: return moments, percent rank, drawdown and
Yang-Zhang volatility. Contract as in nb_common; their slow references live in the tests.

Definitions (the catalog repeats them):
- skew_n / kurt_n: bias-corrected sample skewness and excess kurtosis (as pandas'
  `skew()` / `kurt()`) of the last n daily log returns;
- pct_rank_n: fraction of the previous n-1 closes strictly below today's close;
- max_drawdown_n: the largest fall from a running peak of close within the last n days
  (a value <= 0);
- yang_zhang_n: sqrt(var(overnight) + k var(open->close) + (1-k) mean(Rogers-Satchell)),
  sample variances over n days, k = 0.34 / (1.34 + (n+1)/(n-1)).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import RELATIVE_ZERO, nan_like_nb


@njit(cache=True, error_model="numpy")
def moments_nb(r: np.ndarray, n: int, kurtosis: bool) -> np.ndarray:
    """Two-pass central moments per window (exact, as the reference); the window's mean and
    its count of missing returns slide in O(1), so only the second pass walks the window."""
    out = nan_like_nb(r)
    total = 0.0
    missing = 0
    for i in range(r.shape[0]):
        v = r[i]
        if np.isnan(v):
            missing += 1
        else:
            total += v
        if i >= n:
            gone = r[i - n]
            if np.isnan(gone):
                missing -= 1
            else:
                total -= gone
        if i < n - 1 or missing > 0:
            continue
        mean = total / n
        m1 = 0.0
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        for j in range(i - n + 1, i + 1):
            d = r[j] - mean
            d2 = d * d
            m1 += d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
        m1 /= n
        m2 /= n
        m3 /= n
        m4 /= n
        # The slid mean carries rounding from returns long gone. On a flat window (a
        # halt: every return 0) that residue is all of m2, and m3 / m2^1.5 would be noise
        # or inf; the window is flat when its variance about its own mean (m2 - m1^2) is
        # zero relative to m2. Flat gives 0, as pandas does.
        if m2 - m1 * m1 <= RELATIVE_ZERO * m2:
            out[i] = 0.0
        elif kurtosis:
            g2 = m4 / (m2 * m2) - 3.0
            out[i] = ((n - 1.0) / ((n - 2.0) * (n - 3.0))) * ((n + 1.0) * g2 + 6.0)
        else:
            g1 = m3 / m2**1.5
            out[i] = np.sqrt(n * (n - 1.0)) / (n - 2.0) * g1
    return out


@njit(cache=True, error_model="numpy")
def pct_rank_nb(c: np.ndarray, n: int) -> np.ndarray:
    out = nan_like_nb(c)
    for i in range(n - 1, c.shape[0]):
        below = 0
        for j in range(i - n + 1, i):
            if c[j] < c[i]:
                below += 1
        out[i] = below / (n - 1.0)
    return out


@njit(cache=True, error_model="numpy")
def max_drawdown_nb(c: np.ndarray, n: int) -> np.ndarray:
    """The smallest close / running peak in the window, minus one. O(n) per window; its
    cost is the latency of the running min, not the divisions (measured)."""
    out = nan_like_nb(c)
    for i in range(n - 1, c.shape[0]):
        peak = c[i - n + 1]
        worst = 1.0
        for j in range(i - n + 1, i + 1):
            peak = max(peak, c[j])
            worst = min(worst, c[j] / peak)
        out[i] = worst - 1.0
    return out


@njit(cache=True, error_model="numpy")
def yang_zhang_nb(o, h, lo, c, n: int) -> np.ndarray:
    out = nan_like_nb(c)
    m = c.shape[0]
    k = 0.34 / (1.34 + (n + 1.0) / (n - 1.0))
    # Per-bar logs once; each window then only adds.
    overnight = np.zeros(m)
    open_close = np.zeros(m)
    rs = np.zeros(m)
    for j in range(1, m):
        overnight[j] = np.log(o[j] / c[j - 1])
        open_close[j] = np.log(c[j] / o[j])
        rs[j] = np.log(h[j] / c[j]) * np.log(h[j] / o[j]) + np.log(lo[j] / c[j]) * np.log(
            lo[j] / o[j]
        )
    for i in range(n, m):
        mo = 0.0
        mc = 0.0
        rsum = 0.0
        for j in range(i - n + 1, i + 1):
            mo += overnight[j]
            mc += open_close[j]
            rsum += rs[j]
        mo /= n
        mc /= n
        vo = 0.0
        vc = 0.0
        for j in range(i - n + 1, i + 1):
            a = overnight[j] - mo
            b = open_close[j] - mc
            vo += a * a
            vc += b * b
        vo /= n - 1.0
        vc /= n - 1.0
        total = vo + k * vc + (1.0 - k) * (rsum / n)
        out[i] = np.sqrt(total) if total > 0.0 else 0.0
    return out
