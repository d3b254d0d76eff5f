"""The option trade as it could be placed: the suggested contract (training/contracts.py) bought
at the entry session's open and sold at the exit, both at Black-Scholes (training/options.py)
on realised volatility, with the option spread of backtest/costs.py on each side.

For a signal on day t with trade outcome `o` (backtest/execution.trade_outcomes):
    strike      atm_strike of the close as traded on day t (Bars.traded_close: the listed
                strikes refer to the price before later splits), the strike the signal
                suggested, priced in the bars' adjusted units (strike * adjusted / traded
                close; Black-Scholes scales with spot and strike, so returns are unchanged);
    expiry      the monthly expiry nearest target_days after the entry date, on or after the
                last exit day (session t+H), from the NYSE calendar;
    bought      P0 = BS(entry price = open_{t+1}, strike, (expiry - entry date) / 365,
                vol_20_t sqrt(252)): the volatility known when the order is placed;
    sold        P1 = BS(exit price, strike, (expiry - exit date) / 365, vol_20 of the exit
                session sqrt(252)); at the expiry date itself the option is worth its
                intrinsic value. The exit session's vol_20 includes that day's close, a
                valuation input (one return in 20) rather than a decision;
    returns     gross P1/P0 - 1, costs option_spread (1 + P1/P0), net = gross - costs.
Time is calendar days over 365, date to date (the fill's time of day is ignored: under a
day in a month). The model is European Black-Scholes at realised volatility, a first
approximation of what the trade would have done, not a replay of quotes (see options.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from backtest.costs import TradeCosts, round_trip
from backtest.execution import Bars, Outcomes, TradeReturns
from backtest.portfolio import Book, mark_rows, priority_of
from training.contracts import ContractTerms, TradingCalendar, atm_strike
from training.options import CALENDAR_DAYS_PER_YEAR, annualised_vol_from_feature, black_scholes


class OptionTrades(NamedTuple):
    """Per signal, arrays (n,): strike (as listed, in traded prices), scale (adjusted over
    traded price on the signal day), expiry (datetime64[D]), entry_premium and exit_premium
    per share in the bars' adjusted units (divide by scale for the traded premium), and the
    returns on the premium paid: gross, costs (the round trip charged) and net = gross -
    costs. Returns are NaN where there is no entry, no volatility at the entry or the exit
    (its 20-day warm-up), side 0, or a premium below ContractTerms.min_premium."""

    strike: np.ndarray
    scale: np.ndarray
    expiry: np.ndarray
    entry_premium: np.ndarray
    exit_premium: np.ndarray
    gross: np.ndarray
    costs: np.ndarray
    net: np.ndarray


def _years(expiry: np.ndarray, on: np.ndarray) -> np.ndarray:
    return (expiry - on).astype("timedelta64[D]").astype(float) / CALENDAR_DAYS_PER_YEAR


def contract_of_trades(
    bars: Bars,
    rows: np.ndarray,
    outcomes: Outcomes,
    hold_days: int,
    terms: ContractTerms,
    calendar: TradingCalendar | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strike, scale, expiry) of the contract each signal row suggested: the listed strike
    as traded, the factor from traded to adjusted prices on the signal day (adjusted close
    over traded close: the strike in the bars' units is strike * scale) and the expiry;
    NaN / NaT without entry."""
    rows = np.asarray(rows, dtype=np.int64)
    entered = outcomes.entered
    at = np.maximum(rows, 0)
    strike = np.where(entered, atm_strike(bars.traded_close[at]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(entered, bars.close[at] / bars.traded_close[at], np.nan)
    expiry = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[D]")
    if entered.any():
        entry = outcomes.entry_date[entered]
        calendar = calendar or TradingCalendar.covering(entry.min(), entry.max())
        last_exit = calendar.session_offset(entry, int(hold_days) - 1)
        expiry[entered] = calendar.expiry_for(entry, last_exit, terms.target_days)
    return strike, scale, expiry


def option_trades(
    bars: Bars,
    rows: np.ndarray,
    outcomes: Outcomes,
    side: np.ndarray | int,
    hold_days: int,
    costs: TradeCosts | None = None,
    terms: ContractTerms | None = None,
    calendar: TradingCalendar | None = None,
) -> OptionTrades:
    """The option trade of each signal (the module docstring's rules), vectorised.

    rows (n,): the signal rows of `bars` that `outcomes` (n,) were computed for; side +1
    (call), -1 (put) or 0, scalar or (n,); hold_days: the profile's H (for the expiry).
    Computing it for every row once per side and indexing by a rule's signals gives the
    same values as computing it for the signals only. Raises ValueError on mismatched
    lengths."""
    costs = costs or TradeCosts()
    terms = terms or ContractTerms()
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape != outcomes.entry_index.shape:
        raise ValueError("rows and outcomes must have one value per signal")
    side = np.broadcast_to(np.asarray(side), rows.shape)
    strike, scale, expiry = contract_of_trades(bars, rows, outcomes, hold_days, terms, calendar)
    strike_in_bars = strike * scale
    vol = annualised_vol_from_feature(bars.vol_20)
    entered = outcomes.entered
    signal_vol = np.where(entered, vol[np.maximum(rows, 0)], np.nan)
    exit_vol = np.where(entered, vol[np.maximum(outcomes.exit_index, 0)], np.nan)
    live = np.where(entered, side, 0)
    with np.errstate(invalid="ignore"):
        bought = black_scholes(
            outcomes.entry_price,
            strike_in_bars,
            _years(expiry, outcomes.entry_date),
            signal_vol,
            terms.rate,
            side=live,
        )
        sold = black_scholes(
            outcomes.exit_price,
            strike_in_bars,
            _years(expiry, outcomes.exit_date),
            exit_vol,
            terms.rate,
            side=live,
        )
        # A premium under the minimum, as traded, has no market to buy it in.
        ratio = np.where(bought / scale >= terms.min_premium, sold / bought, np.nan)
    charged = round_trip(ratio, costs.option_spread)
    return OptionTrades(
        strike, scale, expiry, bought, sold, ratio - 1.0, charged, ratio - 1.0 - charged
    )


def option_book(
    bars: Bars,
    rows: np.ndarray,
    outcomes: Outcomes,
    side: int,
    hold_days: int,
    costs: TradeCosts | None = None,
    terms: ContractTerms | None = None,
    priority: np.ndarray | None = None,
    calendar: TradingCalendar | None = None,
) -> tuple[Book, OptionTrades]:
    """The option trades of one side as a `Book` for backtest.portfolio.simulate, marked
    at Black-Scholes every session: at the close with that day's vol_20 and time left,
    the exit session at the exit price. Trades without an entry or without a price (no
    volatility) are left out of the book; the OptionTrades returned cover every row."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side}")
    costs = costs or TradeCosts()
    terms = terms or ContractTerms()
    trades = option_trades(bars, rows, outcomes, side, hold_days, costs, terms, calendar)
    priced = outcomes.entered & np.isfinite(trades.net)
    kept = outcomes.take(priced)
    start, mark = mark_rows(kept)
    length = np.diff(start)
    last = start[1:] - 1
    spot = bars.close[mark].copy()
    spot[last] = kept.exit_price
    vol = annualised_vol_from_feature(bars.vol_20)[mark]
    strike = np.repeat(trades.strike[priced] * trades.scale[priced], length)
    expiry = np.repeat(trades.expiry[priced], length)
    value = black_scholes(
        spot, strike, _years(expiry, bars.dates[mark]), vol, terms.rate, side=side
    )
    value = value / np.repeat(trades.entry_premium[priced], length)
    value[last] = trades.exit_premium[priced] / trades.entry_premium[priced]
    # A missing vol_20 inside a hold (a gap in the features) keeps the previous mark.
    value = _carry_forward(value, start)
    s = costs.option_spread
    book = Book(
        symbol=bars.symbol_of_row()[kept.entry_index],
        entry_date=kept.entry_date,
        mark_start=start,
        mark_date=bars.dates[mark],
        mark_value=value,
        closed=np.isfinite(kept.barrier),
        entry_cost=np.full(len(last), s),
        exit_cost=s * value[last],
        priority=priority_of(priority, priced),
    )
    return book, trades


def _carry_forward(value: np.ndarray, start: np.ndarray) -> np.ndarray:
    """NaN marks take the previous mark of the same trade (1.0, the entry, at its start)."""
    out = value.copy()
    firsts = start[:-1]
    out[firsts] = np.where(np.isnan(out[firsts]), 1.0, out[firsts])
    known = np.where(np.isnan(out), 0, np.arange(len(out)))
    return out[np.maximum.accumulate(known)] if len(out) else out


def trade_columns(
    outcomes: Outcomes, stock: TradeReturns, option: OptionTrades, costs_of: str = "option"
) -> pl.DataFrame:
    """The `signal_trades` columns a trade fills, one row per signal: entry_date, entry_price,
    exit_date, days_held (sessions held: the signal day t's exit at t+k held k, as the
    labels' exit_offset counts), outcome (the barrier: +1 upper, -1 lower, 0 hold limit;
    null while still open), stock_return and option_return after their costs, and costs:
    the round trip charged on `costs_of` ("option" or "stock"), the trade the rule was
    chosen on. Raises ValueError for another `costs_of`."""
    if costs_of not in ("option", "stock"):
        raise ValueError(f"costs_of must be 'option' or 'stock', got {costs_of!r}")
    charged = option.costs if costs_of == "option" else stock.costs
    return pl.DataFrame(
        {
            "entry_date": outcomes.entry_date,
            "entry_price": pl.Series(outcomes.entry_price, nan_to_null=True),
            "exit_date": outcomes.exit_date,
            "days_held": pl.Series(outcomes.sessions, dtype=pl.Int32),
            "outcome": pl.Series(outcomes.barrier, nan_to_null=True).cast(pl.Int8),
            "stock_return": pl.Series(stock.net, nan_to_null=True),
            "option_return": pl.Series(option.net, nan_to_null=True),
            "costs": pl.Series(charged, nan_to_null=True),
        }
    ).with_columns(pl.col("entry_date").cast(pl.Date), pl.col("exit_date").cast(pl.Date))
