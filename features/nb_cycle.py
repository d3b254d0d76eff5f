"""Ehlers' Hilbert-transform cycle measures (HT_DCPERIOD, HT_TRENDMODE), as TA-Lib runs them.

The transform filters a 4-bar weighted price with a 7-tap Hilbert FIR kept separately for
even and odd bars (TA-Lib's layout, which sets the exact order of floating-point steps).
Each result depends on where the series starts (an unstable period): compute from a
stock's first stored bar and recompute when history changes. Contract as in nb_common.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from features.nb_common import nan_like_nb

_A = 0.0962
_B = 0.5769
_DET, _Q1, _JI, _JQ = 0, 1, 2, 3


# inline="always": inlined into _cycle_nb, not compiled once per literal argument.
@njit(inline="always", error_model="numpy")
def _hilbert_step(kind, parity, value, idx, adj, buf, prev, prev_in):
    """One Hilbert FIR step for one of the four transforms on one bar parity."""
    temp = _A * value
    out = 0.0 - buf[kind, parity, idx]
    buf[kind, parity, idx] = temp
    out += temp
    out -= prev[kind, parity]
    prev[kind, parity] = _B * prev_in[kind, parity]
    out += prev[kind, parity]
    prev_in[kind, parity] = value
    return out * adj


@njit(cache=True, error_model="numpy")
def _cycle_nb(x: np.ndarray, warm: int, lookback: int, trend_mode: bool) -> np.ndarray:
    n = x.shape[0]
    out = nan_like_nb(x)
    if n <= lookback:
        return out
    rad2deg = 45.0 / np.arctan(1.0)
    deg2rad = 1.0 / rad2deg
    two_pi = np.arctan(1.0) * 8.0
    # 4-bar weighted moving average of price, seeded over the first bars.
    trailing = 0
    today = 0
    wma_sub = x[0]
    wma_sum = x[0]
    wma_sub += x[1]
    wma_sum += x[1] * 2.0
    wma_sub += x[2]
    wma_sum += x[2] * 3.0
    today = 3
    leaving = 0.0
    for _ in range(warm):
        v = x[today]
        today += 1
        wma_sub += v
        wma_sub -= leaving
        wma_sum += v * 4.0
        leaving = x[trailing]
        trailing += 1
        wma_sum -= wma_sub
    buf = np.zeros((4, 2, 3))
    prev = np.zeros((4, 2))
    prev_in = np.zeros((4, 2))
    hidx = 0
    i1_odd_prev2 = 0.0
    i1_odd_prev3 = 0.0
    i1_even_prev2 = 0.0
    i1_even_prev3 = 0.0
    prev_q2 = 0.0
    prev_i2 = 0.0
    re = 0.0
    im = 0.0
    period = 0.0
    smooth_period = 0.0
    smooth_price = np.zeros(50)
    sp_idx = 0
    dc_phase = 0.0
    sine = 0.0
    lead_sine = 0.0
    itrend1 = 0.0
    itrend2 = 0.0
    itrend3 = 0.0
    days_in_trend = 0
    while today < n:
        adj = 0.075 * period + 0.54
        v = x[today]
        wma_sub += v
        wma_sub -= leaving
        wma_sum += v * 4.0
        leaving = x[trailing]
        trailing += 1
        smoothed = wma_sum * 0.1
        wma_sum -= wma_sub
        smooth_price[sp_idx] = smoothed
        parity = 0 if today % 2 == 0 else 1
        det = _hilbert_step(_DET, parity, smoothed, hidx, adj, buf, prev, prev_in)
        q1 = _hilbert_step(_Q1, parity, det, hidx, adj, buf, prev, prev_in)
        i1 = i1_even_prev3 if parity == 0 else i1_odd_prev3
        ji = _hilbert_step(_JI, parity, i1, hidx, adj, buf, prev, prev_in)
        jq = _hilbert_step(_JQ, parity, q1, hidx, adj, buf, prev, prev_in)
        if parity == 0:
            hidx += 1
            if hidx == 3:
                hidx = 0
        q2 = 0.2 * (q1 + ji) + 0.8 * prev_q2
        i2 = 0.2 * (i1 - jq) + 0.8 * prev_i2
        if parity == 0:
            i1_odd_prev3 = i1_odd_prev2
            i1_odd_prev2 = det
        else:
            i1_even_prev3 = i1_even_prev2
            i1_even_prev2 = det
        re = 0.2 * (i2 * prev_i2 + q2 * prev_q2) + 0.8 * re
        im = 0.2 * (i2 * prev_q2 - q2 * prev_i2) + 0.8 * im
        prev_q2 = q2
        prev_i2 = i2
        last = period
        if im != 0.0 and re != 0.0:
            period = 360.0 / (np.arctan(im / re) * rad2deg)
        if period > 1.5 * last:
            period = 1.5 * last
        if period < 0.67 * last:
            period = 0.67 * last
        if period < 6:
            period = 6.0
        elif period > 50:
            period = 50.0
        period = 0.2 * period + 0.8 * last
        smooth_period = 0.33 * period + 0.67 * smooth_period
        if not trend_mode:
            if today >= lookback:
                out[today] = smooth_period
        else:
            prev_phase = dc_phase
            dc_int = int(smooth_period + 0.5)
            real_part = 0.0
            imag_part = 0.0
            k = sp_idx
            for j in range(dc_int):
                angle = j * two_pi / dc_int
                real_part += np.sin(angle) * smooth_price[k]
                imag_part += np.cos(angle) * smooth_price[k]
                k = 49 if k == 0 else k - 1
            if abs(imag_part) > 0.0:
                dc_phase = np.arctan(real_part / imag_part) * rad2deg
            elif abs(imag_part) <= 0.01:
                if real_part < 0.0:
                    dc_phase -= 90.0
                elif real_part > 0.0:
                    dc_phase += 90.0
            dc_phase += 90.0
            dc_phase += 360.0 / smooth_period
            if imag_part < 0.0:
                dc_phase += 180.0
            if dc_phase > 315.0:
                dc_phase -= 360.0
            prev_sine = sine
            prev_lead = lead_sine
            sine = np.sin(dc_phase * deg2rad)
            lead_sine = np.sin((dc_phase + 45) * deg2rad)
            total = 0.0
            for j in range(dc_int):
                total += x[today - j]
            if dc_int > 0:
                total = total / dc_int
            trendline = (4.0 * total + 3.0 * itrend1 + 2.0 * itrend2 + itrend3) / 10.0
            itrend3 = itrend2
            itrend2 = itrend1
            itrend1 = total
            trend = 1
            crossed_up = sine > lead_sine and prev_sine <= prev_lead
            crossed_down = sine < lead_sine and prev_sine >= prev_lead
            if crossed_up or crossed_down:
                days_in_trend = 0
                trend = 0
            days_in_trend += 1
            if days_in_trend < 0.5 * smooth_period:
                trend = 0
            step = dc_phase - prev_phase
            if smooth_period != 0.0 and (
                step > 0.67 * 360.0 / smooth_period and step < 1.5 * 360.0 / smooth_period
            ):
                trend = 0
            if trendline != 0.0 and abs((smooth_price[sp_idx] - trendline) / trendline) >= 0.015:
                trend = 1
            if today >= lookback:
                out[today] = float(trend)
            sp_idx += 1
            if sp_idx > 49:
                sp_idx = 0
        today += 1
    return out


@njit(cache=True, error_model="numpy")
def ht_cycle_nb(x: np.ndarray, trend_mode: bool) -> np.ndarray:
    """Dominant cycle period in bars (TA-Lib HT_DCPERIOD; first value after 32 bars), or with
    `trend_mode` 1 in a trend, 0 in a cycle (TA-Lib HT_TRENDMODE; first value after 63 bars).
    One function with a run-time flag, so the long cycle kernel is compiled once."""
    warm = 9
    lookback = 32
    if trend_mode:
        warm = 34
        lookback = 63
    return _cycle_nb(x, warm, lookback, trend_mode)
