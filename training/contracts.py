"""What a signal says to do: the session to act, the option contract to buy and its premium, the
underlying's target and stop, and the last exit day. Pure over arrays (plus a polars frame
for `stockml signals`), the same rules for a live signal and for every backtested one.

The rules, for a signal on day t (its close produced it):
- act on the next NYSE session after t, at the open (`act_on`);
- last exit day: the H-th session of the hold counting `act_on` as the first, i.e. session
  t+H, the labels' hold-limit day (backtest/execution_nb.py);
- strike: at the money, the listed strike nearest to the close of t (a half-way tie goes
  up), at the interval the options exchanges list for every optionable stock (the OCC
  guideline: $2.50 below $25, $5 from $25 up to $200, $10 from $200). Many liquid names
  also list $1 or $2.50 strikes above those bands; the coarse band is used because its
  strike exists for every optionable stock, so the suggestion can always be bought;
- expiry: the monthly expiry (the third Friday of a month, or the session before it when
  that Friday is an exchange holiday, as OCC moves it, e.g. Thursday 2022-04-14 before Good
  Friday) nearest to `target_days` calendar days after `act_on`, among the expiries on or
  after the last exit day, so the hold never outlives the contract; a tie goes to the
  later expiry;
- premium: Black-Scholes (training/options.py) per share at the close of t, with the
  strike above, the calendar days from `act_on` to the expiry over 365, the realised
  volatility vol_20 * sqrt(252) of day t and the rate of `ContractTerms`;
- target and stop: close_t (1 + take_profit) and close_t (1 + stop_loss). The trade's
  barriers are set from the fill at the open (backtest/execution_nb.py): the prices shown
  assume a fill at the last close and move with the actual fill.

Sessions come from `exchange_calendars` (the XNYS calendar: NYSE holidays by rule, and its
unscheduled closures such as 2001-09-11..14 and 2012-10-29..30), a maintained library of
exchange calendars used by zipline-reloaded; NumPy business days would need our own
holiday rules (Good Friday, the observed-holiday shifts, Juneteenth since 2022) and would
miss the closures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import polars as pl

from training.options import CALENDAR_DAYS_PER_YEAR, annualised_vol_from_feature, black_scholes

# (upper price bound, strike interval): the OCC guideline for equity options.
STRIKE_BANDS = ((25.0, 2.5), (200.0, 5.0), (np.inf, 10.0))


@dataclass(frozen=True)
class ContractTerms:
    """How the suggested contract is chosen and priced: the expiry nearest `target_days`
    calendar days after the entry, priced at the continuously compounded `rate` (the
    evaluation's risk-free rate); a backtested contract whose premium is under
    `min_premium` per share as traded (5 cents, the options' minimum tick above $3 before
    the penny pilot) is not bought: no market quotes it. Raises ValueError for
    target_days < 1, a rate outside (-0.05, 0.25) or a negative min_premium."""

    target_days: int = 30
    rate: float = 0.04
    min_premium: float = 0.05

    def __post_init__(self) -> None:
        if not (int(self.target_days) == self.target_days and self.target_days >= 1):
            raise ValueError(f"target_days must be a positive integer, got {self.target_days}")
        if not -0.05 < self.rate < 0.25:
            raise ValueError(f"rate must be an annual fraction in (-0.05, 0.25), got {self.rate}")
        if not self.min_premium >= 0:
            raise ValueError(f"min_premium must be >= 0, got {self.min_premium}")


def strike_increment(price: np.ndarray | float) -> np.ndarray:
    """The listed strike interval at `price`, element-wise (STRIKE_BANDS; NaN stays NaN)."""
    price = np.asarray(price, dtype=float)
    bounds = np.array([b for b, _ in STRIKE_BANDS])
    steps = np.array([s for _, s in STRIKE_BANDS])
    band = np.searchsorted(bounds, price, side="right")
    return np.where(np.isnan(price), np.nan, steps[np.minimum(band, len(steps) - 1)])


def atm_strike(price: np.ndarray | float) -> np.ndarray:
    """The listed strike nearest to `price` (a half-way tie goes up), element-wise; NaN for
    NaN or non-positive prices. The interval is that of the price's band."""
    price = np.asarray(price, dtype=float)
    step = strike_increment(price)
    with np.errstate(invalid="ignore"):
        strike = np.floor(price / step + 0.5) * step
    return np.where(price > 0, np.maximum(strike, step), np.nan)


class TradingCalendar(NamedTuple):
    """NYSE sessions (datetime64[D], sorted) over a span, and the monthly expiries in it."""

    sessions: np.ndarray
    expiries: np.ndarray

    @classmethod
    def covering(cls, first: np.datetime64, last: np.datetime64) -> TradingCalendar:
        """The sessions from a little before `first` to well after `last` (whole years, so
        nearby spans share one cached calendar): room for the next session, the hold and
        expiries up to three months on."""
        first_year = int(np.datetime64(first, "Y").astype(int)) + 1970
        last_year = int(np.datetime64(last, "Y").astype(int)) + 1970
        return _calendar(first_year - 1, last_year + 1)

    def next_session(self, dates: np.ndarray) -> np.ndarray:
        """The first session strictly after each date (datetime64[D] in, out)."""
        return self.sessions[self._position(dates, "right")]

    def session_offset(self, sessions: np.ndarray, n: int) -> np.ndarray:
        """The session `n` sessions after each session (a non-session date counts from the
        session after it)."""
        return self.sessions[self._position(sessions, "left", n)]

    def _position(self, dates: np.ndarray, side: str, plus: int = 0) -> np.ndarray:
        dates = np.asarray(dates).astype("datetime64[D]")
        pos = np.searchsorted(self.sessions, dates, side=side) + plus
        if len(dates) and (pos.max() >= len(self.sessions) or dates.min() < self.sessions[0]):
            raise ValueError("dates outside the trading calendar's span")
        return pos

    def expiry_for(self, entry: np.ndarray, last_exit: np.ndarray, target_days: int) -> np.ndarray:
        """The monthly expiry nearest `entry` + target_days among those on or after
        `last_exit` (ties: the later), element-wise, datetime64[D]."""
        entry = np.asarray(entry).astype("datetime64[D]")
        last_exit = np.asarray(last_exit).astype("datetime64[D]")
        target = entry + np.timedelta64(int(target_days), "D")
        first_ok = np.searchsorted(self.expiries, last_exit, side="left")
        above = np.maximum(np.searchsorted(self.expiries, target, side="left"), first_ok)
        below = np.maximum(above - 1, first_ok)
        if len(entry) and above.max() >= len(self.expiries):
            raise ValueError("expiry beyond the trading calendar's span")
        early, late = self.expiries[below], self.expiries[above]
        pick_late = (late - target) <= (target - early)
        return np.where(pick_late, late, early)


@lru_cache(maxsize=4)
def _calendar(first_year: int, last_year: int) -> TradingCalendar:
    import exchange_calendars

    # exchange_calendars 4.13 still reads Series.values, which pandas 3.1 deprecates: the
    # warning is the library's to fix, and a user of `stockml signals` can do nothing about it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        xnys = exchange_calendars.get_calendar(
            "XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31"
        )
    sessions = xnys.sessions.to_numpy().astype("datetime64[D]")
    months = np.arange(
        np.datetime64(f"{first_year}-01", "M"), np.datetime64(f"{last_year}-12", "M") + 1
    )
    first_day = months.astype("datetime64[D]")
    weekday = (first_day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    third_friday = first_day + ((4 - weekday) % 7 + 14).astype("timedelta64[D]")
    # A holiday Friday: the session before it (searchsorted right, minus one).
    at = np.searchsorted(sessions, third_friday, side="right") - 1
    return TradingCalendar(sessions, sessions[np.maximum(at, 0)])


class Contracts(NamedTuple):
    """The suggestion for each signal, arrays of one length n (NaN / NaT where no side).

    act_on, last_exit, expiry datetime64[D]; strike, premium (per share, at the signal
    day's close), target_price, stop_price float64; side int8 (+1 call, -1 put)."""

    side: np.ndarray
    act_on: np.ndarray
    last_exit: np.ndarray
    strike: np.ndarray
    expiry: np.ndarray
    premium: np.ndarray
    target_price: np.ndarray
    stop_price: np.ndarray


def suggest_contracts(
    signal_date: np.ndarray,
    close: np.ndarray,
    vol_20: np.ndarray,
    side: np.ndarray,
    hold_days: int,
    take_profit: float,
    stop_loss: float,
    terms: ContractTerms | None = None,
    calendar: TradingCalendar | None = None,
) -> Contracts:
    """The contract and plan for each signal (the module docstring's rules).

    signal_date (n,) datetime64[D]-like: the signal days; close (n,) the signal day's close
    (the actual close: for the newest day it equals the adjusted one); vol_20 (n,) the
    catalog's daily vol_20 of that day; side (n,) +1 call, -1 put, 0 none (NaN / NaT out).
    The barriers are the profile's. `calendar` defaults to one covering the dates. A NaN
    vol_20 gives a NaN premium, the rest still stands. Raises ValueError on mismatched
    lengths, a side outside {-1, 0, 1} or dates outside the calendar."""
    terms = terms or ContractTerms()
    signal_date = np.asarray(signal_date).astype("datetime64[D]")
    close = np.asarray(close, dtype=float)
    vol_20 = np.asarray(vol_20, dtype=float)
    side = np.asarray(side)
    if not (signal_date.shape == close.shape == vol_20.shape == side.shape) or side.ndim != 1:
        raise ValueError("signal_date, close, vol_20 and side must be 1-D of one length")
    if not np.isin(side, (-1, 0, 1)).all():
        raise ValueError("side must be +1 (call), -1 (put) or 0 (none)")
    nat = np.datetime64("NaT", "D")
    if calendar is None:
        span = signal_date if len(signal_date) else np.array(["2000-01-01"], "datetime64[D]")
        calendar = TradingCalendar.covering(span.min(), span.max())
    act_on = calendar.next_session(signal_date)
    last_exit = calendar.session_offset(act_on, int(hold_days) - 1)
    expiry = calendar.expiry_for(act_on, last_exit, terms.target_days)
    strike = atm_strike(close)
    years = (expiry - act_on).astype(np.int64) / CALENDAR_DAYS_PER_YEAR
    on = side != 0
    premium = black_scholes(
        close,
        strike,
        years,
        annualised_vol_from_feature(vol_20),
        terms.rate,
        side=np.where(on, side, 0),
    )
    return Contracts(
        side.astype(np.int8),
        np.where(on, act_on, nat),
        np.where(on, last_exit, nat),
        np.where(on, strike, np.nan),
        np.where(on, expiry, nat),
        premium,
        np.where(on, close * (1 + take_profit), np.nan),
        np.where(on, close * (1 + stop_loss), np.nan),
    )


SIGNAL_SIDES = {"BUY CALL": 1, "BUY PUT": -1, "HOLD": 0}


def contracts_frame(
    signals: pl.DataFrame,
    hold_days: int,
    take_profit: float,
    stop_loss: float,
    terms: ContractTerms | None = None,
) -> pl.DataFrame:
    """`signals` (columns symbol, date, signal as 'BUY CALL' / 'BUY PUT' / 'HOLD', close,
    vol_20; others kept) with the suggestion's columns added: act_on, strike, expiry,
    premium, target_price, stop_price, last_exit (nulls on HOLD rows). For `stockml
    signals` and the page. Raises ValueError on a missing column or an unknown signal."""
    missing = {"date", "signal", "close", "vol_20"} - set(signals.columns)
    if missing:
        raise ValueError(f"signals lack column(s) {', '.join(sorted(missing))}")
    unknown = set(signals["signal"].unique().to_list()) - set(SIGNAL_SIDES)
    if unknown:
        raise ValueError(f"unknown signal(s) {sorted(unknown)}")
    side = signals["signal"].replace_strict(SIGNAL_SIDES, return_dtype=pl.Int8).to_numpy()
    c = suggest_contracts(
        signals["date"].to_numpy(),
        signals["close"].cast(pl.Float64).to_numpy(),
        signals["vol_20"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        side,
        hold_days,
        take_profit,
        stop_loss,
        terms,
    )
    return signals.with_columns(
        pl.Series("act_on", c.act_on).cast(pl.Date),
        pl.Series("strike", c.strike, nan_to_null=True),
        pl.Series("expiry", c.expiry).cast(pl.Date),
        pl.Series("premium", c.premium, nan_to_null=True),
        pl.Series("target_price", c.target_price, nan_to_null=True),
        pl.Series("stop_price", c.stop_price, nan_to_null=True),
        pl.Series("last_exit", c.last_exit).cast(pl.Date),
    )
