"""The feature driver: every catalog feature of every symbol in one call.

Contract:
    compute_all_nb(o, h, l, c, v, offsets, kinds, params, out)
    o, h, l, c, v   flat float64 arrays of adjusted bars, all symbols back to back,
                    each symbol's rows in date order;
    offsets         int64, len = symbols + 1: symbol k owns rows offsets[k]:offsets[k+1];
    kinds, params   one recipe per feature (from features.catalog): a kind code (a
                    features.kinds.Kind value) and up to three numeric parameters;
    out             float64 (features, rows), C-contiguous, written in place; NaN during
                    warm-up.
Symbols are independent (no value reads another symbol's rows): blocks of symbols run on a
thread per core (the compiled drivers release the GIL). A feature on row t reads rows <= t
of its own symbol only.

Compile time (the first run's wait; see `compile_kernels`). Numba links every kernel a
function calls into that function's own machine code and optimises the whole again, so the
cost of a driver grows with everything it reaches. Hence: two drivers of about equal size
(TREND_KINDS: smoothers, oscillators, trend and cycle; the rest: prices, volatility and
volume), which compile at once in two processes; each driver's dispatch is inlined into
its symbol loop (one optimisation of its kernels, not one per call level); no `prange` (a
parallel loop compiled and optimised everything once more); one compiled version per
kernel (every array argument is writable float64, flags are run-time values, not
literals).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import structlog
from numba import njit, types

from features import nb_common as cm
from features import nb_oscillators as osc
from features import nb_smoothing as sm
from features import nb_stats as st
from features import nb_trend as tr
from features import nb_volume as vo
from features.kinds import Kind as K
from features.nb_cycle import ht_cycle_nb

# Kinds computed by `trend_features_nb`; every other kind by `price_features_nb`.
TREND_KINDS = frozenset(
    {
        K.DEMA_RATIO,
        K.TEMA_RATIO,
        K.KAMA_RATIO,
        K.TRIMA_RATIO,
        K.T3_RATIO,
        K.TRIX,
        K.MACD_LINE,
        K.MACD_SIGNAL,
        K.MACD_HIST,
        K.PPO,
        K.APO,
        K.RSI,
        K.STOCH_K,
        K.STOCH_D,
        K.STOCHF_K,
        K.STOCHF_D,
        K.STOCHRSI_K,
        K.STOCHRSI_D,
        K.WILLR,
        K.CCI,
        K.CMO,
        K.ADX,
        K.PLUS_DI,
        K.MINUS_DI,
        K.DX,
        K.ADXR,
        K.AROON_UP,
        K.AROON_DOWN,
        K.AROONOSC,
        K.MFI,
        K.ULTOSC,
        K.SAR_DIST,
        K.HT_DCPERIOD,
        K.HT_TRENDMODE,
        K.PLUS_DM_RATIO,
        K.MINUS_DM_RATIO,
    }
)
# Rows per task of the thread pool: small enough to balance the cores, large enough that
# the per-call cost (~10 us) is nothing next to the kernels (~1 us per row).
_BLOCK_ROWS = 20_000


@njit(cache=True, error_model="numpy")
def _ratio_minus_one(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a / b - 1 for a price-valued b (DEMA, TEMA and T3 can cross zero), NaN where b is
    zero relative to the close."""
    return cm.divide_nb(a, b, cm.RELATIVE_ZERO * c, np.nan) - 1.0


@njit(cache=True, error_model="numpy")
def _by_price_nb(num: np.ndarray, den: np.ndarray, c: np.ndarray) -> np.ndarray:
    """num / den for a price-valued den (a range, an ATR, a deviation): NaN where den is
    zero relative to the close (a halt's flat bars)."""
    return cm.divide_nb(num, den, cm.RELATIVE_ZERO * c, np.nan)


@njit(cache=True, error_model="numpy")
def _by_deviation_nb(num: np.ndarray, dev: np.ndarray, level: np.ndarray) -> np.ndarray:
    """num / dev for a standard deviation from sums of squares: NaN where dev is zero
    but for rounding (DEVIATION_ZERO of `level`: the close, or dev's own running peak)."""
    return cm.divide_nb(num, dev, cm.DEVIATION_ZERO * level, np.nan)


@njit(cache=True, error_model="numpy")
def _log_of_volume_nb(x: np.ndarray) -> np.ndarray:
    """log(x) of a volume-valued x, NaN where x is zero next to its own running peak (no
    trades: the log of no dollar volume is undefined, not -inf)."""
    peak = cm.running_peak_nb(x)
    out = cm.nan_like_nb(x)
    for i in range(x.shape[0]):
        if x[i] > cm.RELATIVE_ZERO * peak[i]:
            out[i] = np.log(x[i])
    return out


@njit(cache=True, error_model="numpy")
def _rocr_minus_one(c: np.ndarray, n: int) -> np.ndarray:
    out = cm.nan_like_nb(c)
    s = cm.first_valid_nb(c)
    for i in range(s + n, c.shape[0]):
        prev = c[i - n]
        out[i] = (c[i] / prev if prev != 0.0 else 0.0) - 1.0
    return out


@njit(cache=True, error_model="numpy")
def _where_range(h, lo, num, flat_value):
    """num over the day's range; `flat_value` (TA-Lib's) on a flat bar, judged against
    the high."""
    return cm.divide_nb(num, h - lo, cm.RELATIVE_ZERO * h, flat_value)


# inline="always": typed and inlined into its driver's loop, never compiled on its own.
@njit(inline="always", error_model="numpy")
def _trend_feature_nb(kind, p, o, h, lo, c, v, lr):
    """One feature of a TREND_KINDS kind for one symbol."""
    n = int(p[0])
    m = int(p[1])
    q = int(p[2])
    if kind == K.MACD_LINE or kind == K.MACD_SIGNAL or kind == K.MACD_HIST:
        line, sig, hist = osc.macd_nb(c, n, m, q)
        if kind == K.MACD_LINE:
            return line / c
        if kind == K.MACD_SIGNAL:
            return sig / c
        return hist / c
    if kind == K.PPO or kind == K.APO:
        # A run-time flag (not a literal): one compiled price_oscillator_nb for both.
        line = osc.price_oscillator_nb(c, n, m, kind == K.PPO)
        return line if kind == K.PPO else line / c
    if kind == K.RSI:
        return osc.rsi_nb(c, n)
    if kind == K.STOCH_K or kind == K.STOCH_D:
        k_line, d_line = osc.stoch_k_d_nb(h, lo, c, n, m, q)
        return k_line if kind == K.STOCH_K else d_line
    if kind == K.STOCHF_K or kind == K.STOCHF_D:
        fk = osc.fast_k_nb(h, lo, c, n)
        fd = cm.sma_nb(fk, m)
        if kind == K.STOCHF_D:
            return fd
        first = cm.first_valid_nb(fd)
        for i in range(min(first, c.shape[0])):
            fk[i] = np.nan
        return fk
    if kind == K.STOCHRSI_K or kind == K.STOCHRSI_D:
        r = osc.rsi_nb(c, n)
        fk = osc.fast_k_nb(r, r, r, m)
        fd = cm.sma_nb(fk, q)
        if kind == K.STOCHRSI_D:
            return fd
        first = cm.first_valid_nb(fd)
        for i in range(min(first, c.shape[0])):
            fk[i] = np.nan
        return fk
    if kind == K.WILLR:
        return osc.willr_nb(h, lo, c, n)
    if kind == K.CCI:
        return osc.cci_nb(h, lo, c, n)
    if kind == K.CMO:
        return osc.cmo_nb(c, n)
    if kind == K.ADX or kind == K.PLUS_DI or kind == K.MINUS_DI or kind == K.DX:
        pdi, mdi, dx, adx = tr.directional_nb(h, lo, c, n)
        if kind == K.ADX:
            return adx
        if kind == K.PLUS_DI:
            return pdi
        if kind == K.MINUS_DI:
            return mdi
        return dx
    if kind == K.ADXR:
        return tr.adxr_nb(h, lo, c, n)
    if kind == K.AROON_UP or kind == K.AROON_DOWN or kind == K.AROONOSC:
        up, down, osc_line = tr.aroon_nb(h, lo, n)
        if kind == K.AROON_UP:
            return up
        if kind == K.AROON_DOWN:
            return down
        return osc_line
    if kind == K.MFI:
        return osc.mfi_nb(h, lo, c, v, n)
    if kind == K.ULTOSC:
        return osc.ultosc_nb(h, lo, c, n, m, q)
    if kind == K.SAR_DIST:
        return c / tr.sar_nb(h, lo, p[0], p[1]) - 1.0
    if kind == K.HT_DCPERIOD or kind == K.HT_TRENDMODE:
        return ht_cycle_nb(c, kind == K.HT_TRENDMODE)
    if kind == K.PLUS_DM_RATIO or kind == K.MINUS_DM_RATIO:
        dm = tr.dm_nb(h, lo, c, n, kind == K.PLUS_DM_RATIO)
        return _by_price_nb(dm, cm.atr_nb(h, lo, c, n), c)
    if kind == K.DEMA_RATIO:
        return _ratio_minus_one(c, sm.dema_nb(c, n), c)
    if kind == K.TEMA_RATIO:
        return _ratio_minus_one(c, sm.tema_nb(c, n), c)
    if kind == K.KAMA_RATIO:
        return _ratio_minus_one(c, sm.kama_nb(c, n), c)
    if kind == K.TRIMA_RATIO:
        return _ratio_minus_one(c, sm.trima_nb(c, n), c)
    if kind == K.T3_RATIO:
        return _ratio_minus_one(c, sm.t3_nb(c, n, p[1]), c)
    if kind == K.TRIX:
        return sm.trix_nb(c, n)
    # Not reached: features.catalog refuses a kind that is not a Kind, and
    # test_every_kind_is_dispatched proves each Kind has a branch in its driver.
    return cm.nan_like_nb(c)


@njit(inline="always", error_model="numpy")
def _price_feature_nb(kind, p, o, h, lo, c, v, lr):
    """One feature of any other kind for one symbol."""
    n = int(p[0])
    m = int(p[1])
    if kind == K.ROC:
        return _rocr_minus_one(c, n)
    if kind == K.VOL:
        return cm.stddev_nb(lr, n)
    if kind == K.SMA_RATIO:
        return _ratio_minus_one(c, cm.sma_nb(c, n), c)
    if kind == K.EMA_RATIO:
        return _ratio_minus_one(c, cm.ema_nb(c, n), c)
    if kind == K.WMA_RATIO:
        return _ratio_minus_one(c, cm.wma_nb(c, n), c)
    if kind == K.SMA_CROSS:
        return _ratio_minus_one(cm.sma_nb(c, n), cm.sma_nb(c, m), c)
    if kind == K.EMA_CROSS:
        return _ratio_minus_one(cm.ema_nb(c, n), cm.ema_nb(c, m), c)
    if kind == K.MOM:
        return cm.diff_nb(c, n) / c
    if kind == K.NATR:
        return cm.atr_nb(h, lo, c, n) / c * 100.0
    if kind == K.TRANGE_RATIO:
        return cm.true_range_nb(h, lo, c) / c
    if kind == K.BB_PCTB or kind == K.BB_WIDTH:
        mid = cm.sma_nb(c, n)
        dev = cm.stddev_nb(c, n) * p[1]
        upper = mid + dev
        lower = mid - dev
        if kind == K.BB_PCTB:
            return _by_deviation_nb(c - lower, upper - lower, c)
        return (upper - lower) / mid
    if kind == K.KELTNER_POS:
        return _by_price_nb(c - cm.ema_nb(c, n), 2.0 * cm.atr_nb(h, lo, c, n), c)
    if kind == K.KELTNER_WIDTH:
        return 4.0 * cm.atr_nb(h, lo, c, n) / cm.ema_nb(c, n)
    if kind == K.DONCHIAN_POS:
        ll = cm.min_nb(lo, n)
        return _by_price_nb(c - ll, cm.max_nb(h, n) - ll, c)
    if kind == K.DONCHIAN_WIDTH:
        return (cm.max_nb(h, n) - cm.min_nb(lo, n)) / c
    if kind == K.PARKINSON:
        x = np.log(h / lo) ** 2
        return np.sqrt(cm.sma_nb(x, n) / (4.0 * np.log(2.0)))
    if kind == K.GARMAN_KLASS:
        x = 0.5 * np.log(h / lo) ** 2 - (2.0 * np.log(2.0) - 1.0) * np.log(c / o) ** 2
        return np.sqrt(cm.sma_nb(x, n))
    if kind == K.ROGERS_SATCHELL:
        x = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)
        return np.sqrt(cm.sma_nb(x, n))
    if kind == K.YANG_ZHANG:
        return st.yang_zhang_nb(o, h, lo, c, n)
    if kind == K.OBV_SLOPE:
        return cm.divide_by_peak_nb(cm.linreg_slope_nb(vo.obv_nb(c, v), n), cm.sma_nb(v, n))
    if kind == K.VOLUME_RATIO:
        return cm.divide_by_peak_nb(v, cm.sma_nb(v, n))
    if kind == K.ADOSC:
        return cm.divide_by_peak_nb(vo.adosc_nb(h, lo, c, v, n, m), cm.sma_nb(v, m))
    if kind == K.AD_SLOPE:
        return cm.divide_by_peak_nb(cm.linreg_slope_nb(vo.ad_nb(h, lo, c, v), n), cm.sma_nb(v, n))
    if kind == K.CMF:
        mfm = _where_range(h, lo, (c - lo) - (h - c), 0.0)
        return cm.divide_by_peak_nb(cm.sum_nb(mfm * v, n), cm.sum_nb(v, n))
    if kind == K.VWAP_DIST:
        tp = (h + lo + c) / 3.0
        vwap = cm.divide_by_peak_nb(cm.sum_nb(tp * v, n), cm.sum_nb(v, n))
        return _ratio_minus_one(c, vwap, c)
    if kind == K.FORCE:
        push = cm.diff_nb(c, np.int64(1)) * v
        return cm.divide_by_peak_nb(cm.ema_nb(push, n), cm.sma_nb(v, n) * c)
    if kind == K.VOLUME_Z:
        dev = cm.stddev_nb(v, n)
        return _by_deviation_nb(v - cm.sma_nb(v, n), dev, cm.running_peak_nb(dev))
    if kind == K.LOG_DOLLAR_VOLUME:
        return _log_of_volume_nb(cm.sma_nb(c * v, n))
    if kind == K.BODY_RATIO:
        return _where_range(h, lo, c - o, 0.0)
    if kind == K.UPPER_SHADOW:
        return _where_range(h, lo, h - np.maximum(o, c), 0.0)
    if kind == K.LOWER_SHADOW:
        return _where_range(h, lo, np.minimum(o, c) - lo, 0.0)
    if kind == K.GAP:
        return o / cm.shift_nb(c, np.int64(1)) - 1.0
    if kind == K.CLOSE_LOCATION:
        return _where_range(h, lo, c - lo, 0.5)
    if kind == K.HL_RANGE:
        return h / lo - 1.0
    if kind == K.LINREG_SLOPE:
        return cm.linreg_slope_nb(c, n) / c
    if kind == K.LINREG_R2:
        return cm.correl_time_nb(c, n, 0) ** 2
    if kind == K.TSF_RATIO:
        return cm.tsf_nb(c, n) / c - 1.0
    if kind == K.BOP:
        return _where_range(h, lo, c - o, 0.0)
    if kind == K.SKEW or kind == K.KURT:
        return st.moments_nb(lr, n, kind == K.KURT)
    if kind == K.DIST_HIGH:
        return c / cm.max_nb(h, n) - 1.0
    if kind == K.DIST_LOW:
        return c / cm.min_nb(lo, n) - 1.0
    if kind == K.ZSCORE:
        return _by_deviation_nb(c - cm.sma_nb(c, n), cm.stddev_nb(c, n), c)
    if kind == K.PCT_RANK:
        return st.pct_rank_nb(c, n)
    if kind == K.UP_DAYS:
        up = cm.nan_like_nb(c)
        for i in range(1, c.shape[0]):
            up[i] = 1.0 if c[i] > c[i - 1] else 0.0
        return cm.sum_nb(up, n) / n
    if kind == K.MAX_DRAWDOWN:
        return st.max_drawdown_nb(c, n)
    if kind == K.EMA_SLOPE:
        return _rocr_minus_one(cm.ema_nb(c, n), m)
    if kind == K.ATR_RATIO:
        return _by_price_nb(cm.atr_nb(h, lo, c, n), cm.atr_nb(h, lo, c, m), c)
    if kind == K.VOL_RATIO:
        return cm.divide_by_peak_nb(cm.stddev_nb(lr, n), cm.stddev_nb(lr, m))
    if kind == K.MIDPOINT_RATIO:
        return c / ((cm.max_nb(c, n) + cm.min_nb(c, n)) / 2.0) - 1.0
    if kind == K.MIDPRICE_RATIO:
        return c / ((cm.max_nb(h, n) + cm.min_nb(lo, n)) / 2.0) - 1.0
    if kind == K.RET_VOL_ADJ:
        return cm.divide_by_peak_nb(_rocr_minus_one(c, n), cm.stddev_nb(lr, m) * np.sqrt(float(n)))
    if kind == K.RET_SKIP:
        return cm.shift_nb(_rocr_minus_one(c, n - m), m)
    # Not reached: features.catalog refuses a kind that is not a Kind, and
    # test_every_kind_is_dispatched proves each Kind has a branch in its driver.
    return cm.nan_like_nb(c)


@njit(cache=True, nogil=True, error_model="numpy")
def trend_features_nb(o, h, lo, c, v, offsets, k0, k1, kinds, params, rows, out):
    """Symbols k0..k1-1, features kinds[j] (TREND_KINDS) into out[rows[j]]."""
    for k in range(k0, k1):
        a = offsets[k]
        b = offsets[k + 1]
        if b > a:
            oo, hh, ll, cc, vv = o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b]
            lr = cm.log_returns_nb(cc)
            for j in range(kinds.shape[0]):
                out[rows[j], a:b] = _trend_feature_nb(kinds[j], params[j], oo, hh, ll, cc, vv, lr)


@njit(cache=True, nogil=True, error_model="numpy")
def price_features_nb(o, h, lo, c, v, offsets, k0, k1, kinds, params, rows, out):
    """Symbols k0..k1-1, features kinds[j] (not TREND_KINDS) into out[rows[j]]."""
    for k in range(k0, k1):
        a = offsets[k]
        b = offsets[k + 1]
        if b > a:
            oo, hh, ll, cc, vv = o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b]
            lr = cm.log_returns_nb(cc)
            for j in range(kinds.shape[0]):
                out[rows[j], a:b] = _price_feature_nb(kinds[j], params[j], oo, hh, ll, cc, vv, lr)


DRIVERS = {"trend": trend_features_nb, "price": price_features_nb}
_F1 = types.Array(types.float64, 1, "C")
_I1 = types.Array(types.int64, 1, "C")
_F2 = types.Array(types.float64, 2, "C")
# The one signature both drivers are compiled for (compute_all_nb passes exactly these).
DRIVER_SIGNATURE = (_F1,) * 5 + (_I1, types.int64, types.int64, _I1, _F2, _I1, _F2)
_COMPILING = threading.Lock()


def driver_cached(name: str) -> bool:
    """Whether Numba's on-disk cache holds driver `name` compiled from the current source
    (its index is stamped with the source file; a stale or missing one reads as empty)."""
    try:
        return bool(DRIVERS[name]._cache._cache_file._load_index())
    except Exception:  # Numba internals moved: compile_kernels then compiles both itself
        return False


def compile_kernels() -> tuple[str, ...]:
    """Compile both drivers (or load them from Numba's cache), each once per process;
    returns the names of the drivers a child process compiled (none when cached).

    With the cache missing the trend driver, a child Python process compiles it into the
    cache while this one compiles the price driver; this process then loads the child's
    result (Numba compiles one function at a time per process, so two processes is how two
    cores share the work). If the child fails, this process compiles it too: slower, same
    code. Idempotent and cheap once compiled."""
    with _COMPILING:
        todo = [name for name, d in DRIVERS.items() if not d.signatures]
        child = None
        if todo == ["trend", "price"] and not driver_cached("trend"):
            child = _start_child("trend")
        DRIVERS["price"].compile(DRIVER_SIGNATURE)
        if child is not None and child.wait() != 0:
            structlog.get_logger("features").warning(
                "kernel_compile_child_failed", returncode=child.returncode
            )
        DRIVERS["trend"].compile(DRIVER_SIGNATURE)
        return ("trend",) if child is not None else ()


def _start_child(name: str) -> subprocess.Popen:
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    from numba import config

    if config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = config.CACHE_DIR
    code = f"import features.kernels as k; k.DRIVERS[{name!r}].compile(k.DRIVER_SIGNATURE)"
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def compute_all_nb(o, h, lo, c, v, offsets, kinds, params, out) -> None:
    """All features of all symbols into `out` (see the module contract)."""
    bars = [np.require(x, np.float64, ["C", "W"]) for x in (o, h, lo, c, v)]
    offsets = np.require(offsets, np.int64, ["C", "W"])
    kinds = np.require(kinds, np.int64, ["C", "W"])
    params = np.require(params, np.float64, ["C", "W"])
    if not (out.flags.c_contiguous and out.dtype == np.float64):
        raise ValueError("out must be a C-contiguous float64 array")
    compile_kernels()
    trend = np.isin(kinds, np.array(sorted(TREND_KINDS), dtype=np.int64))
    groups = []
    for driver, mask in ((trend_features_nb, trend), (price_features_nb, ~trend)):
        rows = np.flatnonzero(mask).astype(np.int64)
        if rows.size:
            groups.append((driver, kinds[rows], np.ascontiguousarray(params[rows]), rows))
    # Blocks of whole symbols of about _BLOCK_ROWS rows each.
    cuts = np.searchsorted(offsets, np.arange(0, offsets[-1], _BLOCK_ROWS), side="right") - 1
    starts = np.unique(np.append(cuts, 0))
    ends = np.append(starts[1:], offsets.shape[0] - 1)
    tasks = [
        (driver, int(k0), int(k1), g_kinds, g_params, rows)
        for k0, k1 in zip(starts, ends, strict=True)
        if k1 > k0
        for driver, g_kinds, g_params, rows in groups
    ]

    def run(task):
        driver, k0, k1, g_kinds, g_params, rows = task
        driver(*bars, offsets, k0, k1, g_kinds, g_params, rows, out)

    if len(tasks) <= 1:
        for task in tasks:
            run(task)
        return
    with ThreadPoolExecutor(min(len(tasks), os.cpu_count() or 1)) as pool:
        list(pool.map(run, tasks))
