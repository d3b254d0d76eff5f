"""Building blocks shared by every feature kernel, written once and reused.

Contract (every function here): one symbol's series as a 1-D float64 array in, a new
float64 array of the same length out, NaN until the value is defined. Leading NaNs in the
input are skipped the way TA-Lib's Python wrapper skips them: the computation starts at the
first non-NaN element. Running sums are updated in TA-Lib's order (add the new value,
then subtract the oldest), so results agree with TA-Lib to the last few bits.
No value ever depends on a later element (no look-ahead).
Kernels use NumPy's error model (x/0 gives inf or NaN, no exception), which lets loops
vectorise; the warm-up NaNs and zero guards are explicit where TA-Lib has them.
Numba compiles a kernel once per distinct set of argument types, and a bare `True` or `1`
passed to a kernel is a literal type of its own: flags and constants between kernels are
passed as `np.bool_(True)` / `np.int64(1)` (or a run-time comparison), so each kernel is
compiled once (the first run's compile time; see features.kernels).

No feature is ever +-inf, for any valid input (positive prices, low <= open, close <= high,
volume >= 0): a denominator that is zero, or zero but for rounding, gives NaN (stored NULL),
or TA-Lib's value where TA-Lib defines one (RSI 0 on a flat window, CCI 0, candle ratios 0).
"Zero but for rounding" is decided relative to the series' own scale, never in absolute
units, so a penny stock and a $1,000 stock are treated alike:
    |den| <= RELATIVE_ZERO * scale    (RELATIVE_ZERO = 1e-12),
where scale is the close for price-valued denominators (ranges, ATR, moving averages),
or the running peak of |den| up to that day for volume-valued ones (running sums leave a
residue proportional to the largest total they have held; causal, so no look-ahead).
A standard deviation computed from sums of squares keeps rounding of order sqrt(1e-16)
times its level, so its zero is DEVIATION_ZERO = sqrt(RELATIVE_ZERO) times the close (or
its own running peak, for volume): a flat window is NaN, not the noise of that rounding.
`divide_nb` applies a threshold; a denominator above it leaves the ratio within ~1e12 of
its numerator's scale, finite also as the store's float32.
TA-Lib's own absolute guards (EPSILON below) are kept where they decide TA-Lib's output,
for parity on normal data.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# TA-Lib treats |v| < 1e-14 as zero (TA_EPSILON) before a square root or a division.
EPSILON = 1e-14
# A denominator within this fraction of its scale is zero that rounding left behind.
RELATIVE_ZERO = 1e-12
# The same for a standard deviation from running sums of squares: the variance keeps
# rounding of order 1e-16 x level^2, so the deviation's zero is sqrt(RELATIVE_ZERO) x level.
DEVIATION_ZERO = 1e-6


@njit(cache=True, error_model="numpy")
def first_valid_nb(x: np.ndarray) -> int:
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True, error_model="numpy")
def nan_like_nb(x: np.ndarray) -> np.ndarray:
    return np.full(x.shape[0], np.nan)


@njit(cache=True, error_model="numpy")
def sum_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Rolling sum over n values (TA-Lib SUM)."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    total = 0.0
    for i in range(s, s + n - 1):
        total += x[i]
    for i in range(s + n - 1, x.shape[0]):
        total += x[i]
        out[i] = total
        total -= x[i - n + 1]
    return out


@njit(cache=True, error_model="numpy")
def sma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average (TA-Lib SMA: running total divided by n)."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    total = 0.0
    for i in range(s, s + n - 1):
        total += x[i]
    for i in range(s + n - 1, x.shape[0]):
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]
    return out


@njit(cache=True, error_model="numpy")
def ema_from_nb(x: np.ndarray, n: int, k: float) -> np.ndarray:
    """EMA seeded with the SMA of its first n values, as TA-Lib does by default."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    total = 0.0
    for i in range(s, s + n):
        total += x[i]
    prev = total / n
    out[s + n - 1] = prev
    for i in range(s + n, x.shape[0]):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


@njit(cache=True, error_model="numpy")
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    return ema_from_nb(x, n, 2.0 / (n + 1))


@njit(cache=True, error_model="numpy")
def wma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Linearly weighted moving average, kept as a weighted sum and a plain sum that are
    updated in O(1) per step, in TA-Lib WMA's order of operations."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    divider = float((n * (n + 1)) // 2)
    weighted = 0.0
    plain = 0.0
    for w in range(1, n):
        v = x[s + w - 1]
        plain += v
        weighted += v * w
    leaving = 0.0
    trailing = s
    for i in range(s + n - 1, x.shape[0]):
        v = x[i]
        plain += v
        plain -= leaving
        weighted += v * n
        leaving = x[trailing]
        trailing += 1
        out[i] = weighted / divider
        weighted -= plain
    return out


@njit(cache=True, error_model="numpy")
def _extreme_nb(x: np.ndarray, n: int, highest: bool) -> np.ndarray:
    """Rolling max (or min) over n with a monotone deque: O(1) amortised per step."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    m = x.shape[0]
    dq = np.empty(m, dtype=np.int64)  # indices; values along the deque are monotone
    head = 0
    tail = 0
    for i in range(s, m):
        v = x[i]
        if highest:
            while tail > head and x[dq[tail - 1]] <= v:
                tail -= 1
        else:
            while tail > head and x[dq[tail - 1]] >= v:
                tail -= 1
        dq[tail] = i
        tail += 1
        if dq[head] <= i - n:
            head += 1
        if i >= s + n - 1:
            out[i] = x[dq[head]]
    return out


@njit(cache=True, error_model="numpy")
def max_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Highest value over n (TA-Lib MAX)."""
    return _extreme_nb(x, n, np.bool_(True))


@njit(cache=True, error_model="numpy")
def min_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Lowest value over n (TA-Lib MIN)."""
    return _extreme_nb(x, n, np.bool_(False))


@njit(cache=True, error_model="numpy")
def stddev_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation over n (TA-Lib STDDEV with nbdev 1): running sums
    of x and x^2; 0 where rounding makes the variance non-positive."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    sum1 = 0.0
    sum2 = 0.0
    for i in range(s, s + n - 1):
        sum1 += x[i]
        sum2 += x[i] * x[i]
    for i in range(s + n - 1, x.shape[0]):
        v = x[i]
        sum1 += v
        sum2 += v * v
        mean1 = sum1 / n
        mean2 = sum2 / n
        var = mean2 - mean1 * mean1
        out[i] = np.sqrt(var) if var >= EPSILON else 0.0
        old = x[i - n + 1]
        sum1 -= old
        sum2 -= old * old
    return out


@njit(cache=True, error_model="numpy")
def _regression_nb(x: np.ndarray, n: int, forecast: bool) -> np.ndarray:
    """Least-squares line over the last n values, x measured in days ago as TA-Lib does:
    its slope (LINEARREG_SLOPE), or its value one step ahead (TSF)."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    sum_x = n * (n - 1) * 0.5
    sum_x_sqr = n * (n - 1) * (2 * n - 1) / 6.0
    divisor = sum_x * sum_x - n * sum_x_sqr
    for i in range(s + n - 1, x.shape[0]):
        sum_xy = 0.0
        sum_y = 0.0
        for age in range(n - 1, -1, -1):
            v = x[i - age]
            sum_y += v
            sum_xy += age * v
        m = (n * sum_xy - sum_x * sum_y) / divisor
        out[i] = (sum_y - m * sum_x) / n + m * n if forecast else m
    return out


@njit(cache=True, error_model="numpy")
def linreg_slope_nb(x: np.ndarray, n: int) -> np.ndarray:
    return _regression_nb(x, n, np.bool_(False))


@njit(cache=True, error_model="numpy")
def tsf_nb(x: np.ndarray, n: int) -> np.ndarray:
    return _regression_nb(x, n, np.bool_(True))


@njit(cache=True, error_model="numpy")
def correl_time_nb(x: np.ndarray, n: int, t0: int) -> np.ndarray:
    """Pearson correlation of x with time over n (TA-Lib CORREL against an index ramp
    that starts at t0 for the first element; the oldest pair leaves before the new one
    enters, in TA-Lib's order, since the sums of t^2 are large)."""
    out = nan_like_nb(x)
    s = first_valid_nb(x)
    if x.shape[0] - s < n:
        return out
    sxy = 0.0
    sx = 0.0
    sy = 0.0
    sx2 = 0.0
    sy2 = 0.0
    for i in range(s, s + n):
        t = float(t0 + i)
        v = x[i]
        sx += t
        sx2 += t * t
        sxy += t * v
        sy += v
        sy2 += v * v
    for i in range(s + n - 1, x.shape[0]):
        if i > s + n - 1:
            j = i - n
            t = float(t0 + j)
            v = x[j]
            sx -= t
            sx2 -= t * t
            sxy -= t * v
            sy -= v
            sy2 -= v * v
            t = float(t0 + i)
            v = x[i]
            sx += t
            sx2 += t * t
            sxy += t * v
            sy += v
            sy2 += v * v
        denom = (sx2 - (sx * sx) / n) * (sy2 - (sy * sy) / n)
        out[i] = (sxy - (sx * sy) / n) / np.sqrt(denom) if denom >= EPSILON else 0.0
    return out


@njit(cache=True, error_model="numpy")
def diff_nb(x: np.ndarray, lag: int) -> np.ndarray:
    out = nan_like_nb(x)
    for i in range(lag, x.shape[0]):
        out[i] = x[i] - x[i - lag]
    return out


@njit(cache=True, error_model="numpy")
def shift_nb(x: np.ndarray, lag: int) -> np.ndarray:
    out = nan_like_nb(x)
    for i in range(lag, x.shape[0]):
        out[i] = x[i - lag]
    return out


@njit(cache=True, error_model="numpy")
def log_returns_nb(c: np.ndarray) -> np.ndarray:
    out = nan_like_nb(c)
    for i in range(1, c.shape[0]):
        out[i] = np.log(c[i]) - np.log(c[i - 1])
    return out


@njit(cache=True, error_model="numpy")
def true_range_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    """TA-Lib TRANGE: defined from the second bar on."""
    out = nan_like_nb(c)
    for i in range(1, c.shape[0]):
        a = h[i] - lo[i]
        b = abs(h[i] - c[i - 1])
        d = abs(lo[i] - c[i - 1])
        m = a
        if b > m:
            m = b
        if d > m:
            m = d
        out[i] = m
    return out


@njit(cache=True, error_model="numpy")
def atr_nb(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Wilder's ATR: seeded with the SMA of the first n true ranges (TA-Lib ATR)."""
    tr = true_range_nb(h, lo, c)
    out = nan_like_nb(c)
    if c.shape[0] <= n:
        return out
    total = 0.0
    for i in range(1, n + 1):
        total += tr[i]
    prev = total / n
    out[n] = prev
    for i in range(n + 1, c.shape[0]):
        prev = (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


@njit(cache=True, error_model="numpy")
def divide_nb(num: np.ndarray, den: np.ndarray, zero: np.ndarray, fill: float) -> np.ndarray:
    """num / den, or `fill` where |den| <= zero (per-day thresholds, e.g. RELATIVE_ZERO *
    close); NaN where den or zero is NaN."""
    out = np.empty(den.shape[0])
    for i in range(den.shape[0]):
        d = den[i]
        if abs(d) > zero[i]:
            out[i] = num[i] / d
        elif np.isnan(d) or np.isnan(zero[i]):
            out[i] = np.nan
        else:
            out[i] = fill
    return out


@njit(cache=True, error_model="numpy")
def running_peak_nb(x: np.ndarray) -> np.ndarray:
    """The largest |x| up to each day (NaN ignored): the scale of a volume-valued series."""
    out = np.empty(x.shape[0])
    peak = 0.0
    for i in range(x.shape[0]):
        a = abs(x[i])
        if a > peak:
            peak = a
        out[i] = peak
    return out


@njit(cache=True, error_model="numpy")
def divide_by_peak_nb(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where |den| <= RELATIVE_ZERO * (largest |den| so far): a volume sum
    back to zero after a halt, or zero volume throughout."""
    return divide_nb(num, den, RELATIVE_ZERO * running_peak_nb(den), np.nan)
