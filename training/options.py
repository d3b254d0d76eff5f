"""What a signal would have earned as an option: Black-Scholes prices of European calls and
puts, and the return of an at-the-money option bought on a signal and sold at its exit.

Pure NumPy/SciPy over arrays that broadcast together; no I/O. Units throughout: prices in
the stock's currency, time in years (365 calendar days), volatility and rates annualised,
rates and dividend yields continuously compounded. `side` is +1 for a call and -1 for a
put (the signal codes of `training.trades`); 0 means no trade and prices as NaN.

The model is the textbook one (Black & Scholes 1973, with Merton's 1973 dividend yield;
Hull, "Options, Futures, and Other Derivatives", ch. 15): a European option on a stock
with constant volatility. US equity options are American and their market price carries
the implied, not the realised, volatility; the returns here are a first approximation of
what an option trade would have done, not a replay of quotes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

TRADING_DAYS_PER_YEAR = 252
CALENDAR_DAYS_PER_YEAR = 365


def black_scholes(
    spot: np.ndarray | float,
    strike: np.ndarray | float,
    years: np.ndarray | float,
    vol: np.ndarray | float,
    rate: np.ndarray | float = 0.0,
    dividend: np.ndarray | float = 0.0,
    side: np.ndarray | int = 1,
) -> np.ndarray:
    """Price of a European call (side=+1) or put (side=-1), element-wise.

    All arguments broadcast to one shape; the result is float64 of that shape.
    With d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt T), d2 = d1 - sigma sqrt T
    and w = side, the price is w (S e^(-qT) N(w d1) - K e^(-rT) N(w d2)) (Hull ch. 15;
    the w form folds the call and put formulas into one).

    Edge cases, chosen so that every value is the limit of the formula:
    - years <= 0: the option has expired and is worth its intrinsic value max(w (S - K), 0);
    - vol == 0 (years > 0): the limit sigma -> 0, the discounted intrinsic value of the
      forward, max(w (S e^(-qT) - K e^(-rT)), 0);
    - vol < 0 or NaN, spot or strike <= 0 or NaN, side 0: NaN (no price can be given),
      also when the option has expired: a missing input is a gap to be seen, not filled.
    Raises ValueError when `side` holds a value other than -1, 0, +1.
    """
    s, k, t, v, r, q, w = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (spot, strike, years, vol, rate, dividend, side))
    )
    if not np.isin(w, (-1.0, 0.0, 1.0)).all():
        raise ValueError("side must be +1 (call), -1 (put) or 0 (no trade)")
    live = (t > 0) & (v > 0)
    # Safe stand-ins where the formula does not apply; those cells are replaced below.
    t_live = np.where(live, t, 1.0)
    v_live = np.where(live, v, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        root_t = np.sqrt(t_live)
        d1 = (np.log(s / k) + (r - q + 0.5 * v_live**2) * t_live) / (v_live * root_t)
        d2 = d1 - v_live * root_t
        forward_s = s * np.exp(-q * np.maximum(t, 0.0))
        forward_k = k * np.exp(-r * np.maximum(t, 0.0))
        price = w * (forward_s * ndtr(w * d1) - forward_k * ndtr(w * d2))
    price = np.where(t <= 0, np.maximum(w * (s - k), 0.0), price)
    price = np.where((t > 0) & (v == 0), np.maximum(w * (forward_s - forward_k), 0.0), price)
    unpriceable = ~(v >= 0) | ~(s > 0) | ~(k > 0) | (w == 0) | np.isnan(t + r + q)
    return np.where(unpriceable, np.nan, price)


def option_trade_returns(
    entry_close: np.ndarray,
    exit_close: np.ndarray,
    entry_vol: np.ndarray,
    exit_vol: np.ndarray,
    days_held: np.ndarray,
    side: np.ndarray | int,
    expiry_days: float = 30,
    rate: float = 0.04,
) -> np.ndarray:
    """Return of buying an at-the-money option at the entry close and selling it at the exit.

    Arrays of one shape (n,) (or anything that broadcasts): entry_close and exit_close are
    the stock prices at entry and exit, entry_vol and exit_vol the annualised realised
    volatilities on those days (see `annualised_vol_from_feature`), days_held the TRADING
    days between them (the label's `exit_offset`), side +1 for a call, -1 for a put and 0
    for no trade. `expiry_days` is the option's life in CALENDAR days at entry, `rate` the
    continuously compounded risk-free rate per year.

    The strike is the entry close. The option is bought at
    BS(S0, K=S0, T=expiry_days/365, entry_vol) and sold at BS(S1, K=S0, T_left, exit_vol),
    where T_left = (expiry_days - days_held * 365/252) / 365: trading days are converted to
    calendar time at 365/252 calendar days per trading day, the average ratio over a year
    (weekends and holidays included). A hold that outlives the option (T_left <= 0) is
    valued at its intrinsic value at the exit close, an approximation: it really expired
    earlier, at the price of that day.

    Returns float64 exit_price / entry_price - 1 (so >= -1; -1 is a total loss), NaN where
    no trade was made (side 0), an input is NaN (e.g. a volatility still in its warm-up) or
    the entry price is 0. Raises ValueError for expiry_days <= 0 or a side outside
    {-1, 0, +1}.
    """
    if not expiry_days > 0:
        raise ValueError(f"expiry_days must be positive, got {expiry_days}")
    entry_close = np.asarray(entry_close, dtype=float)
    days_held = np.asarray(days_held, dtype=float)
    years_at_entry = expiry_days / CALENDAR_DAYS_PER_YEAR
    calendar_days_held = days_held * CALENDAR_DAYS_PER_YEAR / TRADING_DAYS_PER_YEAR
    years_left = (expiry_days - calendar_days_held) / CALENDAR_DAYS_PER_YEAR
    bought = black_scholes(entry_close, entry_close, years_at_entry, entry_vol, rate, side=side)
    sold = black_scholes(exit_close, entry_close, years_left, exit_vol, rate, side=side)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bought > 0, sold / bought - 1.0, np.nan)


def annualised_vol_from_feature(vol_20: np.ndarray | float) -> np.ndarray:
    """Annualised volatility from the catalog feature `vol_20`, element-wise (float64).

    features/catalog.csv defines vol_20 as the population standard deviation of DAILY log
    returns over 20 trading days (TA-Lib `STDDEV(diff(log(close)), 20, 1)`), not
    annualised; under the usual i.i.d. assumption variance grows with time, so the annual
    figure is vol_20 * sqrt(252). NaN (the 20-day warm-up) stays NaN. No errors raised.
    """
    return np.asarray(vol_20, dtype=float) * np.sqrt(TRADING_DAYS_PER_YEAR)
