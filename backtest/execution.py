"""Trades as they could be placed, over many symbols at once: the validating layer above
backtest/execution_nb.py (whose docstring is the contract of every rule).

    read_bars(con, symbols) -> Bars           the one I/O function: adjusted OHLC + vol_20
    bars_from_prices(prices) -> Bars          the same from a `prices`-shaped frame (pure)
    rows_of(bars, symbols, dates) -> int64    flat rows of (symbol, date) pairs, -1 unknown
    trade_outcomes(bars, rows, ...) -> Outcomes   entry / exit of every signal, once
    first_free(outcomes, code, symbol) -> bool  one open position per symbol and side
    stock_returns(outcomes, side, costs) -> TradeReturns   stock trade before/after costs

The outcome of a row does not depend on the side (both sides share the stock's barriers),
so a caller computes `trade_outcomes` once for every row it may signal on and then, per
candidate rule, applies `first_free` and the returns to the rows the rule signals. Keep the
rows in date order once, and per rule pass the side codes of every row (0 where the rule is
silent): `first_free(out, np.where(p >= t, side, 0), symbol)` copies nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from backtest.costs import TradeCosts, round_trip
from backtest.execution_nb import first_free_nb, trade_outcomes_nb


class Bars(NamedTuple):
    """Split- and dividend-adjusted daily bars of many symbols back to back, each in date
    order (`features.compute.adjust_bars`): symbol k owns rows offsets[k]:offsets[k+1].

    symbols (k,) str sorted; offsets int64 (k+1,); dates datetime64[D] (n,); open, high,
    low, close float64 (n,); vol_20 float64 (n,): the catalog's daily (not annualised)
    20-day volatility of log returns, NaN in its warm-up or where no features are stored;
    traded_close float64 (n,): the close as it traded that day (Yahoo's split-adjusted
    close times the ratio of every later split), the price level listed strikes refer to.
    """

    symbols: np.ndarray
    offsets: np.ndarray
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    vol_20: np.ndarray
    traded_close: np.ndarray

    def symbol_of_row(self) -> np.ndarray:
        """int64 (n,): the symbol number of every flat row."""
        return np.repeat(np.arange(len(self.symbols)), np.diff(self.offsets))


def bars_from_prices(
    prices: pl.DataFrame, vol_20: pl.DataFrame | None = None, splits: pl.DataFrame | None = None
) -> Bars:
    """Bars from a frame with the columns of `prices` (symbol, date, open, high, low, close,
    adjclose), adjusted as the features and labels are; `vol_20` (symbol, date, vol_20)
    is joined on (symbol, date) when given; `splits` (symbol, date, ratio: 4.0 for a 4:1
    split taking effect that day) give the traded close (without them it is Yahoo's
    split-adjusted close). Raises ValueError on duplicate (symbol, date)."""
    from features.compute import adjust_bars, offsets_of

    prices = prices.sort("symbol", "date")
    if prices.select(pl.struct("symbol", "date").is_duplicated().any()).item():
        raise ValueError("prices hold a (symbol, date) twice")
    adjusted = adjust_bars(prices)
    if vol_20 is not None:
        adjusted = adjusted.join(
            vol_20.select("symbol", "date", pl.col("vol_20").cast(pl.Float64)),
            on=["symbol", "date"],
            how="left",
            maintain_order="left",
        )
    offsets = offsets_of(adjusted["symbol"])
    n = adjusted.height

    def column(name: str) -> np.ndarray:
        return np.ascontiguousarray(adjusted[name].to_numpy(), dtype=np.float64)

    symbols = adjusted["symbol"].to_numpy()[offsets[:-1]].astype(str)
    dates = adjusted["date"].to_numpy().astype("datetime64[D]")
    traded = np.array(prices["close"].to_numpy(), dtype=np.float64)
    if splits is not None:
        position = dict(zip(symbols.tolist(), range(len(symbols)), strict=True))
        for symbol, day, ratio in splits.select("symbol", "date", "ratio").iter_rows():
            k = position.get(symbol)
            if k is None or not ratio > 0:
                continue
            a, b = offsets[k], offsets[k + 1]
            before = a + np.searchsorted(dates[a:b], np.datetime64(day, "D"))
            traded[a:before] *= ratio  # days before the split traded at the pre-split price
    return Bars(
        symbols=symbols,
        offsets=offsets,
        dates=dates,
        open=column("open"),
        high=column("high"),
        low=column("low"),
        close=column("close"),
        vol_20=column("vol_20") if vol_20 is not None else np.full(n, np.nan),
        traded_close=traded,
    )


def read_bars(con: Any, symbols: list[str] | None = None) -> Bars:
    """The adjusted bars, vol_20 and traded closes of `symbols` (None: every stored symbol)
    from the store. vol_20 is NaN where the `features` table holds none."""
    from stockml import store

    return bars_from_prices(
        store.read_prices(con, symbols),
        store.read_vol_20(con, symbols),
        store.read_splits(con, symbols),
    )


def rows_of(bars: Bars, symbols: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """int64 (n,): the flat row of each (symbol, date) pair in `bars`, -1 where the pair is
    not there. symbols (n,) str, dates (n,) anything `np.datetime64[D]` accepts."""
    symbols = np.asarray(symbols).astype(str)
    dates = np.asarray(dates).astype("datetime64[D]")
    if symbols.shape != dates.shape or symbols.ndim != 1:
        raise ValueError("symbols and dates must be 1-D arrays of one length")
    if len(bars.close) == 0:
        return np.full(len(symbols), -1, dtype=np.int64)
    k = np.searchsorted(bars.symbols, symbols)
    known = (k < len(bars.symbols)) & (
        bars.symbols[np.minimum(k, len(bars.symbols) - 1)] == symbols
    )
    # One sorted key per bar, symbol number then day (the bars' own order), so every pair
    # is found by one binary search.
    day_span = np.int64(1) << 32
    bar_key = bars.symbol_of_row() * day_span + bars.dates.astype(np.int64)
    key = k.astype(np.int64) * day_span + dates.astype(np.int64)
    pos = np.minimum(np.searchsorted(bar_key, key), len(bar_key) - 1)
    found = known & ~np.isnat(dates) & (bar_key[pos] == key)
    return np.where(found, pos, -1).astype(np.int64)


class Outcomes(NamedTuple):
    """One trade per signal row (see backtest/execution_nb.py for every rule).

    entry_index, exit_index int64 flat rows of `Bars` (-1: no entry); entry_date, exit_date
    datetime64[D] (NaT: no entry); entry_price, exit_price float64 (NaN: no entry);
    barrier float64 +1 upper / -1 lower / 0 hold limit (NaN: no entry, or still open at
    the end of the data); sessions int64 held (0: no entry); both bool, the exit session
    touched both barriers (counted as the lower one)."""

    entry_index: np.ndarray
    exit_index: np.ndarray
    entry_date: np.ndarray
    exit_date: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    barrier: np.ndarray
    sessions: np.ndarray
    both: np.ndarray

    @property
    def entered(self) -> np.ndarray:
        """bool: the signal has an entry (the symbol has a session after the signal day)."""
        return self.entry_index >= 0

    def take(self, index: np.ndarray) -> Outcomes:
        """The outcomes of a subset of the signals (an index or a boolean mask)."""
        return Outcomes(*(a[index] for a in self))


def trade_outcomes(
    bars: Bars, rows: np.ndarray, hold_days: int, take_profit: float, stop_loss: float
) -> Outcomes:
    """Entry and exit of a trade on each signal row: entered at the next session's open,
    exited at the first barrier or the hold limit (backtest/execution_nb.py).

    rows: int64 (n,) flat rows of `bars` (the signal days; -1 is no signal). The profile's
    barriers: `hold_days` >= 1 sessions, take_profit > 0, -1 < stop_loss < 0 (e.g.
    `backtest.labels.PROFILES["swing"]`). Raises ValueError on bad barriers or rows
    outside the bars. Speed: benchmarks/bench_trades.py."""
    if not (int(hold_days) == hold_days and hold_days >= 1):
        raise ValueError(f"hold_days must be a positive integer, got {hold_days}")
    if not take_profit > 0 or not -1 < stop_loss < 0:
        raise ValueError(f"need take_profit > 0 and -1 < stop_loss < 0: {take_profit}, {stop_loss}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n_bars = len(bars.close)
    if rows.ndim != 1 or (len(rows) and rows.max() >= n_bars):
        raise ValueError(f"rows must be a 1-D array of flat rows below {n_bars}")
    block = np.searchsorted(bars.offsets, rows, side="right")
    block_end = bars.offsets[np.minimum(block, len(bars.offsets) - 1)]
    entry, exit_, entry_price, exit_price, barrier, sessions, both = trade_outcomes_nb(
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        block_end,
        rows,
        int(hold_days),
        float(take_profit),
        float(stop_loss),
    )
    nat = np.datetime64("NaT", "D")
    entry_date = np.where(entry >= 0, bars.dates[np.maximum(entry, 0)], nat)
    exit_date = np.where(exit_ >= 0, bars.dates[np.maximum(exit_, 0)], nat)
    return Outcomes(
        entry, exit_, entry_date, exit_date, entry_price, exit_price, barrier, sessions, both
    )


def first_free(outcomes: Outcomes, code: np.ndarray, symbol: np.ndarray) -> np.ndarray:
    """bool (n,): the signals that open a trade when one position per symbol and side may be
    open (a signal while one is open is not a new trade; first_free_nb's contract).

    code: int8-like (n,) side of each row's signal (+1, -1; 0 no signal; a boolean mask of
    one side works as +1); symbol: int (n,) the symbol number of each row (e.g.
    `bars.symbol_of_row()[rows]`). Rows in date order within each symbol. O(n)."""
    code = np.ascontiguousarray(code, dtype=np.int8)
    symbol = np.ascontiguousarray(symbol, dtype=np.int64)
    if not (code.shape == symbol.shape == outcomes.entry_index.shape):
        raise ValueError("code, symbol and outcomes must have one value per row")
    n_symbols = int(symbol.max()) + 1 if len(symbol) else 0
    if len(symbol) and symbol.min() < 0:
        raise ValueError("symbol numbers must be >= 0")
    return first_free_nb(code, symbol, outcomes.entry_index, outcomes.exit_index, n_symbols)


class TradeReturns(NamedTuple):
    """Per trade, float64 (n,) returns on the stake from the trader's side: gross (before
    costs), costs (the round trip charged, >= 0) and net = gross - costs."""

    gross: np.ndarray
    costs: np.ndarray
    net: np.ndarray


def stock_returns(
    outcomes: Outcomes, side: np.ndarray | int, costs: TradeCosts | None = None
) -> TradeReturns:
    """The stock trade of each signal: bought at the entry for a call (+1), sold short for a
    put (-1), closed at the exit; costs.stock_each_way on each side (backtest/costs.py).
    NaN where there is no entry or side is 0. A trade still open at the end of the data is
    valued at its last close, as if closed there."""
    costs = costs or TradeCosts()
    side = np.broadcast_to(np.asarray(side, dtype=float), outcomes.entry_price.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = outcomes.exit_price / outcomes.entry_price
    ratio = np.where(side != 0, ratio, np.nan)
    gross = side * (ratio - 1.0)
    charged = round_trip(ratio, costs.stock_each_way)
    return TradeReturns(gross, charged, gross - charged)
