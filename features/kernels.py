"""The feature driver: every catalog feature of every symbol in one call.

Contract:
    compute_all_nb(o, h, l, c, v, offsets, kinds, params, out)
    o, h, l, c, v   flat float64 arrays of adjusted bars, all symbols back to back,
                    each symbol's rows in date order;
    offsets         int64, len = symbols + 1: symbol k owns rows offsets[k]:offsets[k+1];
    kinds, params   one recipe per feature (from features.catalog): a kind code and up to
                    three numeric parameters;
    out             float64 (features, rows), written in place; NaN during warm-up.
Symbols are independent (no value reads another symbol's rows) and run in parallel.
A feature on row t reads rows <= t of its own symbol only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from features import nb_common as cm
from features import nb_oscillators as osc
from features import nb_smoothing as sm
from features import nb_stats as st
from features import nb_trend as tr
from features import nb_volume as vo
from features.nb_cycle import ht_dcperiod_nb, ht_trendmode_nb

# Kind codes. The names are the catalog's recipe names (features/catalog.py).
KINDS = [
    "roc",
    "vol",
    "sma_ratio",
    "ema_ratio",
    "wma_ratio",
    "dema_ratio",
    "tema_ratio",
    "kama_ratio",
    "trima_ratio",
    "t3_ratio",
    "sma_cross",
    "ema_cross",
    "macd_line",
    "macd_signal",
    "macd_hist",
    "ppo",
    "apo",
    "rsi",
    "stoch_k",
    "stoch_d",
    "stochf_k",
    "stochf_d",
    "stochrsi_k",
    "stochrsi_d",
    "willr",
    "cci",
    "cmo",
    "mom",
    "adx",
    "plus_di",
    "minus_di",
    "adxr",
    "dx",
    "aroon_up",
    "aroon_down",
    "aroonosc",
    "natr",
    "trange_ratio",
    "bb_pctb",
    "bb_width",
    "keltner_pos",
    "keltner_width",
    "donchian_pos",
    "donchian_width",
    "parkinson",
    "garman_klass",
    "rogers_satchell",
    "yang_zhang",
    "obv_slope",
    "volume_ratio",
    "mfi",
    "adosc",
    "ad_slope",
    "cmf",
    "vwap_dist",
    "force",
    "volume_z",
    "log_dollar_volume",
    "body_ratio",
    "upper_shadow",
    "lower_shadow",
    "gap",
    "close_location",
    "hl_range",
    "linreg_slope",
    "linreg_r2",
    "tsf_ratio",
    "ultosc",
    "trix",
    "bop",
    "sar_dist",
    "ht_dcperiod",
    "ht_trendmode",
    "skew",
    "kurt",
    "dist_high",
    "dist_low",
    "zscore",
    "pct_rank",
    "up_days",
    "max_drawdown",
    "ema_slope",
    "atr_ratio",
    "vol_ratio",
    "plus_dm_ratio",
    "minus_dm_ratio",
    "midpoint_ratio",
    "midprice_ratio",
    "ret_vol_adj",
    "ret_skip",
]
KIND = {name: i for i, name in enumerate(KINDS)}


@njit(cache=True, error_model="numpy")
def _ratio_minus_one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a / b - 1.0


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
    out = np.empty(h.shape[0])
    for i in range(h.shape[0]):
        rng = h[i] - lo[i]
        out[i] = num[i] / rng if rng > 0.0 else flat_value
    return out


@njit(cache=True, error_model="numpy")
def feature_nb(kind, p, o, h, lo, c, v, lr):
    n = int(p[0])
    m = int(p[1])
    q = int(p[2])
    if kind == 0:
        return _rocr_minus_one(c, n)
    if kind == 1:
        return cm.stddev_nb(lr, n)
    if kind == 2:
        return c / cm.sma_nb(c, n) - 1.0
    if kind == 3:
        return c / cm.ema_nb(c, n) - 1.0
    if kind == 4:
        return c / cm.wma_nb(c, n) - 1.0
    if kind == 5:
        return c / sm.dema_nb(c, n) - 1.0
    if kind == 6:
        return c / sm.tema_nb(c, n) - 1.0
    if kind == 7:
        return c / sm.kama_nb(c, n) - 1.0
    if kind == 8:
        return c / sm.trima_nb(c, n) - 1.0
    if kind == 9:
        return c / sm.t3_nb(c, n, p[1]) - 1.0
    if kind == 10:
        return cm.sma_nb(c, n) / cm.sma_nb(c, m) - 1.0
    if kind == 11:
        return cm.ema_nb(c, n) / cm.ema_nb(c, m) - 1.0
    if 12 <= kind <= 14:
        line, sig, hist = osc.macd_nb(c, n, m, q)
        if kind == 12:
            return line / c
        if kind == 13:
            return sig / c
        return hist / c
    if kind == 15:
        return osc.price_oscillator_nb(c, n, m, True)
    if kind == 16:
        return osc.price_oscillator_nb(c, n, m, False) / c
    if kind == 17:
        return osc.rsi_nb(c, n)
    if kind == 18 or kind == 19:
        k_line, d_line = osc.stoch_k_d_nb(h, lo, c, n, m, q)
        return k_line if kind == 18 else d_line
    if kind == 20 or kind == 21:
        fk = osc.fast_k_nb(h, lo, c, n)
        fd = cm.sma_nb(fk, m)
        if kind == 21:
            return fd
        first = cm.first_valid_nb(fd)
        for i in range(min(first, c.shape[0])):
            fk[i] = np.nan
        return fk
    if kind == 22 or kind == 23:
        r = osc.rsi_nb(c, n)
        fk = osc.fast_k_nb(r, r, r, m)
        fd = cm.sma_nb(fk, q)
        if kind == 23:
            return fd
        first = cm.first_valid_nb(fd)
        for i in range(min(first, c.shape[0])):
            fk[i] = np.nan
        return fk
    if kind == 24:
        return osc.willr_nb(h, lo, c, n)
    if kind == 25:
        return osc.cci_nb(h, lo, c, n)
    if kind == 26:
        return osc.cmo_nb(c, n)
    if kind == 27:
        return cm.diff_nb(c, n) / c
    if 28 <= kind <= 30 or kind == 32:
        pdi, mdi, dx, adx = tr.directional_nb(h, lo, c, n)
        if kind == 28:
            return adx
        if kind == 29:
            return pdi
        if kind == 30:
            return mdi
        return dx
    if kind == 31:
        return tr.adxr_nb(h, lo, c, n)
    if 33 <= kind <= 35:
        up, down, osc_line = tr.aroon_nb(h, lo, n)
        if kind == 33:
            return up
        if kind == 34:
            return down
        return osc_line
    if kind == 36:
        return cm.atr_nb(h, lo, c, n) / c * 100.0
    if kind == 37:
        return cm.true_range_nb(h, lo, c) / c
    if kind == 38 or kind == 39:
        mid = cm.sma_nb(c, n)
        dev = cm.stddev_nb(c, n) * p[1]
        upper = mid + dev
        lower = mid - dev
        if kind == 38:
            return (c - lower) / (upper - lower)
        return (upper - lower) / mid
    if kind == 40:
        return (c - cm.ema_nb(c, n)) / (2.0 * cm.atr_nb(h, lo, c, n))
    if kind == 41:
        return 4.0 * cm.atr_nb(h, lo, c, n) / cm.ema_nb(c, n)
    if kind == 42:
        ll = cm.min_nb(lo, n)
        return (c - ll) / (cm.max_nb(h, n) - ll)
    if kind == 43:
        return (cm.max_nb(h, n) - cm.min_nb(lo, n)) / c
    if kind == 44:
        x = np.log(h / lo) ** 2
        return np.sqrt(cm.sma_nb(x, n) / (4.0 * np.log(2.0)))
    if kind == 45:
        x = 0.5 * np.log(h / lo) ** 2 - (2.0 * np.log(2.0) - 1.0) * np.log(c / o) ** 2
        return np.sqrt(cm.sma_nb(x, n))
    if kind == 46:
        x = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)
        return np.sqrt(cm.sma_nb(x, n))
    if kind == 47:
        return st.yang_zhang_nb(o, h, lo, c, n)
    if kind == 48:
        return cm.linreg_slope_nb(vo.obv_nb(c, v), n) / cm.sma_nb(v, n)
    if kind == 49:
        return v / cm.sma_nb(v, n)
    if kind == 50:
        return osc.mfi_nb(h, lo, c, v, n)
    if kind == 51:
        return vo.adosc_nb(h, lo, c, v, n, m) / cm.sma_nb(v, m)
    if kind == 52:
        return cm.linreg_slope_nb(vo.ad_nb(h, lo, c, v), n) / cm.sma_nb(v, n)
    if kind == 53:
        mfm = _where_range(h, lo, (c - lo) - (h - c), 0.0)
        return cm.sum_nb(mfm * v, n) / cm.sum_nb(v, n)
    if kind == 54:
        tp = (h + lo + c) / 3.0
        return c / (cm.sum_nb(tp * v, n) / cm.sum_nb(v, n)) - 1.0
    if kind == 55:
        return cm.ema_nb(cm.diff_nb(c, 1) * v, n) / (cm.sma_nb(v, n) * c)
    if kind == 56:
        return (v - cm.sma_nb(v, n)) / cm.stddev_nb(v, n)
    if kind == 57:
        return np.log(cm.sma_nb(c * v, n))
    if kind == 58:
        return _where_range(h, lo, c - o, 0.0)
    if kind == 59:
        return _where_range(h, lo, h - np.maximum(o, c), 0.0)
    if kind == 60:
        return _where_range(h, lo, np.minimum(o, c) - lo, 0.0)
    if kind == 61:
        return o / cm.shift_nb(c, 1) - 1.0
    if kind == 62:
        return _where_range(h, lo, c - lo, 0.5)
    if kind == 63:
        return h / lo - 1.0
    if kind == 64:
        return cm.linreg_slope_nb(c, n) / c
    if kind == 65:
        return cm.correl_time_nb(c, n, 0) ** 2
    if kind == 66:
        return cm.tsf_nb(c, n) / c - 1.0
    if kind == 67:
        return osc.ultosc_nb(h, lo, c, n, m, q)
    if kind == 68:
        return sm.trix_nb(c, n)
    if kind == 69:
        return _where_range(h, lo, c - o, 0.0)
    if kind == 70:
        return c / tr.sar_nb(h, lo, p[0], p[1]) - 1.0
    if kind == 71:
        return ht_dcperiod_nb(c)
    if kind == 72:
        return ht_trendmode_nb(c)
    if kind == 73:
        return st.moments_nb(lr, n, False)
    if kind == 74:
        return st.moments_nb(lr, n, True)
    if kind == 75:
        return c / cm.max_nb(h, n) - 1.0
    if kind == 76:
        return c / cm.min_nb(lo, n) - 1.0
    if kind == 77:
        return (c - cm.sma_nb(c, n)) / cm.stddev_nb(c, n)
    if kind == 78:
        return st.pct_rank_nb(c, n)
    if kind == 79:
        up = cm.nan_like_nb(c)
        for i in range(1, c.shape[0]):
            up[i] = 1.0 if c[i] > c[i - 1] else 0.0
        return cm.sum_nb(up, n) / n
    if kind == 80:
        return st.max_drawdown_nb(c, n)
    if kind == 81:
        return _rocr_minus_one(cm.ema_nb(c, n), m)
    if kind == 82:
        return cm.atr_nb(h, lo, c, n) / cm.atr_nb(h, lo, c, m)
    if kind == 83:
        return cm.stddev_nb(lr, n) / cm.stddev_nb(lr, m)
    if kind == 84:
        return tr.dm_nb(h, lo, c, n, True) / cm.atr_nb(h, lo, c, n)
    if kind == 85:
        return tr.dm_nb(h, lo, c, n, False) / cm.atr_nb(h, lo, c, n)
    if kind == 86:
        return c / ((cm.max_nb(c, n) + cm.min_nb(c, n)) / 2.0) - 1.0
    if kind == 87:
        return c / ((cm.max_nb(h, n) + cm.min_nb(lo, n)) / 2.0) - 1.0
    if kind == 88:
        return _rocr_minus_one(c, n) / (cm.stddev_nb(lr, m) * np.sqrt(float(n)))
    if kind == 89:
        return cm.shift_nb(_rocr_minus_one(c, n - m), m)
    return cm.nan_like_nb(c)


@njit(cache=True, error_model="numpy")
def compute_symbol_nb(o, h, lo, c, v, kinds, params, out):
    lr = cm.log_returns_nb(c)
    for j in range(kinds.shape[0]):
        out[j, :] = feature_nb(kinds[j], params[j], o, h, lo, c, v, lr)


# nogil: refresh_features computes the next batch while DuckDB writes the previous one.
@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def compute_all_nb(o, h, lo, c, v, offsets, kinds, params, out):
    for k in prange(offsets.shape[0] - 1):
        a = offsets[k]
        b = offsets[k + 1]
        if b > a:
            compute_symbol_nb(o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], kinds, params, out[:, a:b])
