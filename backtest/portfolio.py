"""A portfolio of trades with a stated sizing rule, marked to market daily, and its statistics.

    Sizing(max_positions)                 equal stake per trade, a cap on open positions
    stock_book(bars, outcomes, side, ...) -> Book   stock trades, marked at each close
    (training/option_trades.option_book builds the same Book for the option trades)
    simulate(book, days, sizing) -> Portfolio       backtest/portfolio_nb.py's rules
    hold_universe(bars, days, costs) -> (Book, Portfolio)  equal-weight buy and hold
    portfolio_stats(portfolio, book) -> PortfolioStats     the issue's figures
    equity_frame(portfolio) -> polars    date, equity, drawdown, positions

The sizing rule: each trade is staked 1 / max_positions of the equity at the previous
close (capped by the cash left, never borrowed), so all trades of a day get equal stakes
and the stake grows and shrinks with the book. At most max_positions are open and one per
symbol; when more trades want to enter on a day than there are free slots, they enter in
the order of `priority` (higher first; e.g. the signal's p_win - p_loss), ties by symbol
number, then by their order in the book, and the rest are skipped. A book holds one side:
the one-position-per-symbol rule is per book.

Statistics come from empyrical-reloaded (the maintained fork of Quantopian's empyrical,
used by pyfolio-reloaded and zipline-reloaded: plain NumPy in, the usual definitions),
on the daily returns of the equity curve: Sharpe and Sortino without a risk-free rate,
annualised by 252 sessions. Drawdown length is ours (empyrical gives depth only).
vectorbt's `Portfolio.from_signals` installs beside our pins too, but brings ipython,
ipywidgets and ~40 packages along, has one price per bar (an entry at the open and a stop
the same session cannot be one bar there) and no cap across symbols; so the kernel is our
own, tested against a plain-Python reference, and benchmarks/compare_vectorbt.py replays
our fills in vectorbt (one position, all cash, a fee each way): the daily equity curves
agree to 3e-14, long and short (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from backtest.costs import TradeCosts
from backtest.execution import Bars, Outcomes
from backtest.portfolio_nb import simulate_nb

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Sizing:
    """Equal stake per trade: 1 / max_positions of the equity at the previous close, at
    most max_positions open at once, starting from `initial` (1.0: equity in multiples of
    the starting capital). Raises ValueError for max_positions < 1 or initial <= 0."""

    max_positions: int = 10
    initial: float = 1.0

    def __post_init__(self) -> None:
        if not (int(self.max_positions) == self.max_positions and self.max_positions >= 1):
            raise ValueError(f"max_positions must be a positive integer, got {self.max_positions}")
        if not self.initial > 0:
            raise ValueError(f"initial equity must be positive, got {self.initial}")


class Book(NamedTuple):
    """The trades of one signal set and side, ready to simulate (n trades, m marks).

    symbol int64 (n,) symbol numbers; entry_date datetime64[D] (n,) the session bought at
    its open; mark_start int64 (n+1,): trade i's marks are [mark_start[i], mark_start[i+1]);
    mark_date datetime64[D] (m,) and mark_value float64 (m,): the value per unit of stake
    at that session's close, the last one at the exit when closed[i]; closed bool (n,):
    false for a trade still open at the end of the data; entry_cost, exit_cost float64
    (n,): charged at the entry / exit as a share of the stake (backtest/costs.py);
    priority float64 (n,): higher enters first when the cap binds."""

    symbol: np.ndarray
    entry_date: np.ndarray
    mark_start: np.ndarray
    mark_date: np.ndarray
    mark_value: np.ndarray
    closed: np.ndarray
    entry_cost: np.ndarray
    exit_cost: np.ndarray
    priority: np.ndarray

    @property
    def net_return(self) -> np.ndarray:
        """float64 (n,): each trade's return on its stake after both costs (a trade still
        open: at its last mark, after the entry cost only)."""
        last = self.mark_value[self.mark_start[1:] - 1]
        return last - 1.0 - self.entry_cost - np.where(self.closed, self.exit_cost, 0.0)


def mark_rows(outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """(start, rows): the flat bar rows of every entered trade's sessions, entry to exit,
    back to back; trade i (in the order of the entered outcomes) owns rows[start[i]:
    start[i+1]]."""
    entered = outcomes.entered
    first = outcomes.entry_index[entered]
    length = outcomes.sessions[entered]
    start = np.concatenate([[0], np.cumsum(length)]).astype(np.int64)
    within = np.arange(start[-1]) - np.repeat(start[:-1], length)
    return start, np.repeat(first, length) + within


def priority_of(priority: np.ndarray | None, entered: np.ndarray) -> np.ndarray:
    """The priorities of the entered outcomes (0 without any; NaN ranks last)."""
    if priority is None:
        return np.zeros(int(entered.sum()))
    priority = np.asarray(priority, dtype=float)
    if priority.shape != entered.shape:
        raise ValueError("priority must have one value per outcome")
    return np.nan_to_num(priority[entered], nan=-np.inf)


def stock_book(
    bars: Bars,
    outcomes: Outcomes,
    side: int,
    costs: TradeCosts | None = None,
    priority: np.ndarray | None = None,
) -> Book:
    """The stock trades of `outcomes` (the trades of one side: bought for side +1, sold
    short for -1), each marked at every close from its entry to its exit, the exit session
    at the exit price; outcomes without an entry are left out. Costs: stock_each_way at
    the entry, and on the exit value at the exit. Raises ValueError for side not +-1."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side}")
    costs = costs or TradeCosts()
    entered = outcomes.entered
    start, rows = mark_rows(outcomes)
    entry_price = np.repeat(outcomes.entry_price[entered], np.diff(start))
    price = bars.close[rows].copy()
    last = start[1:] - 1
    price[last] = outcomes.exit_price[entered]
    ratio = price / entry_price
    value = ratio if side == 1 else 2.0 - ratio
    k = costs.stock_each_way
    return Book(
        symbol=bars.symbol_of_row()[outcomes.entry_index[entered]],
        entry_date=outcomes.entry_date[entered],
        mark_start=start,
        mark_date=bars.dates[rows],
        mark_value=value,
        closed=np.isfinite(outcomes.barrier[entered]),
        entry_cost=np.full(len(last), k),
        exit_cost=k * ratio[last],
        priority=priority_of(priority, entered),
    )


class Portfolio(NamedTuple):
    """A simulated book: dates datetime64[D] (d,), equity float64 (d,) at each close (starting
    capital `initial` before the first day), positions int64 (d,) open during each day;
    per trade of the book taken bool (n,) and stake float64 (n,); skipped_busy, skipped_full
    trades not entered (symbol held / cap or cash reached); initial the starting equity."""

    dates: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    taken: np.ndarray
    stake: np.ndarray
    skipped_busy: int
    skipped_full: int
    initial: float

    @property
    def returns(self) -> np.ndarray:
        """float64 (d,): daily returns of the equity, the first against `initial`."""
        return np.diff(np.r_[self.initial, self.equity]) / np.r_[self.initial, self.equity[:-1]]

    @property
    def drawdown(self) -> np.ndarray:
        """float64 (d,): equity over its running peak (the start included) minus 1, <= 0."""
        peak = np.maximum.accumulate(np.r_[self.initial, self.equity])[1:]
        return self.equity / peak - 1.0


def simulate(book: Book, days: np.ndarray, sizing: Sizing | None = None) -> Portfolio:
    """Trade `book` over `days` (datetime64[D]-like, sorted, unique: the sessions of the
    period, e.g. the test window's dates) under `sizing` (backtest/portfolio_nb.py has
    every rule). A trade entering before the first day or after the last is not taken;
    marks after the last day are not reached (the position is still open at the end).
    Raises ValueError on unsorted days or a malformed book."""
    sizing = sizing or Sizing()
    days = np.asarray(days).astype("datetime64[D]")
    if days.ndim != 1 or len(days) == 0 or (np.diff(days) <= np.timedelta64(0, "D")).any():
        raise ValueError("days must be a non-empty, increasing array of dates")
    n = len(book.symbol)
    if book.mark_start.shape != (n + 1,) or book.mark_start[-1] != len(book.mark_value):
        raise ValueError("book.mark_start does not match its marks")
    if n and (np.diff(book.mark_start) < 1).any():
        raise ValueError("every trade of the book needs at least one mark")
    entry_day = np.searchsorted(days, book.entry_date, side="left")
    entry_day = np.where(book.entry_date < days[0], -1, entry_day).astype(np.int64)
    mark_day = np.searchsorted(days, book.mark_date, side="left").astype(np.int64)
    order = np.lexsort((np.arange(n), book.symbol, -book.priority, entry_day)).astype(np.int64)
    n_symbols = int(book.symbol.max()) + 1 if n else 0
    equity, held, taken, stake, busy, full = simulate_nb(
        len(days),
        order,
        entry_day,
        np.ascontiguousarray(book.symbol, dtype=np.int64),
        n_symbols,
        np.ascontiguousarray(book.mark_start, dtype=np.int64),
        mark_day,
        np.ascontiguousarray(book.mark_value, dtype=np.float64),
        np.ascontiguousarray(book.closed, dtype=np.bool_),
        np.ascontiguousarray(book.entry_cost, dtype=np.float64),
        np.ascontiguousarray(book.exit_cost, dtype=np.float64),
        int(sizing.max_positions),
        float(sizing.initial),
    )
    return Portfolio(days, equity, held, taken, stake, int(busy), int(full), float(sizing.initial))


def hold_universe(
    bars: Bars, days: np.ndarray, costs: TradeCosts | None = None, only: np.ndarray | None = None
) -> tuple[Book, Portfolio]:
    """Equal-weight buy and hold of the symbols of `bars` (`only`: these symbol numbers, e.g.
    the traded ones; None: all) over `days`: each symbol bought
    at the open of its first session in the period with 1 / (symbols) of the equity at the
    previous close, held (marked at each close) and sold at the close of its last session
    in the period, stock costs at both ends. A symbol listed later enters later, with its
    share of the equity then. The benchmark "holding the universe" of the issue."""
    costs = costs or TradeCosts()
    days = np.asarray(days).astype("datetime64[D]")
    symbol_of_row = bars.symbol_of_row()
    inside = (bars.dates >= days[0]) & (bars.dates <= days[-1])
    if only is not None:
        inside &= np.isin(symbol_of_row, np.asarray(only))
    rows = np.flatnonzero(inside)
    symbols, first_at, length = np.unique(
        symbol_of_row[rows], return_index=True, return_counts=True
    )
    first = rows[first_at]
    start = np.concatenate([[0], np.cumsum(length)]).astype(np.int64)
    entry = np.repeat(bars.open[first], length)
    ratio = bars.close[rows] / entry
    k = costs.stock_each_way
    book = Book(
        symbol=symbols.astype(np.int64),
        entry_date=bars.dates[first],
        mark_start=start,
        mark_date=bars.dates[rows],
        mark_value=ratio,
        closed=np.ones(len(symbols), dtype=bool),
        entry_cost=np.full(len(symbols), k),
        exit_cost=k * ratio[start[1:] - 1],
        priority=np.zeros(len(symbols)),
    )
    return book, simulate(book, days, Sizing(max_positions=max(len(symbols), 1)))


@dataclass(frozen=True)
class PortfolioStats:
    """The figures of one equity curve and its trades (fractions, not percent).

    total_return, annual_return (geometric, 252 sessions a year), sharpe, sortino (daily
    returns, no risk-free rate, x sqrt(252); NaN without variation, sortino inf without a
    losing day), max_drawdown (<= 0) and max_drawdown_days (sessions from the peak before
    the deepest trough until equity regains it, or until the last day if it never does),
    exposure (share of days with a position open), trades (taken), skipped (not taken:
    symbol held, cap or cash), hit_rate (share of taken, closed trades with a net return
    above 0), mean_return, mean_win, mean_loss (mean net return of all / winning / other
    taken closed trades; NaN when there are none)."""

    total_return: float
    annual_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_days: int
    exposure: float
    trades: int
    skipped: int
    hit_rate: float
    mean_return: float
    mean_win: float
    mean_loss: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def drawdown_length(equity: np.ndarray, initial: float) -> int:
    """Sessions from the peak before the deepest trough until equity is back at that peak
    (or until the last day); 0 without a drawdown."""
    curve = np.r_[initial, equity]
    peak = np.maximum.accumulate(curve)
    trough = int(np.argmin(curve / peak))
    if curve[trough] >= peak[trough]:
        return 0
    top = int(np.flatnonzero(curve[: trough + 1] == peak[trough])[-1])
    back = np.flatnonzero(curve[trough:] >= peak[trough])
    end = trough + int(back[0]) if len(back) else len(curve) - 1
    return end - top


def portfolio_stats(portfolio: Portfolio, book: Book) -> PortfolioStats:
    """The statistics of a simulated `book` (see PortfolioStats)."""
    import empyrical

    returns = portfolio.returns
    done = portfolio.taken & book.closed
    net = book.net_return[done]
    wins, other = net[net > 0], net[~(net > 0)]

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if len(x) else np.nan

    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = float(empyrical.sharpe_ratio(returns, annualization=TRADING_DAYS_PER_YEAR))
        sortino = float(empyrical.sortino_ratio(returns, annualization=TRADING_DAYS_PER_YEAR))
    return PortfolioStats(
        total_return=float(portfolio.equity[-1] / portfolio.initial - 1.0),
        annual_return=float(empyrical.annual_return(returns, annualization=TRADING_DAYS_PER_YEAR)),
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=float(empyrical.max_drawdown(returns)),
        max_drawdown_days=drawdown_length(portfolio.equity, portfolio.initial),
        exposure=float(np.mean(portfolio.positions > 0)),
        trades=int(portfolio.taken.sum()),
        skipped=portfolio.skipped_busy + portfolio.skipped_full,
        hit_rate=float(np.mean(net > 0)) if len(net) else np.nan,
        mean_return=mean(net),
        mean_win=mean(wins),
        mean_loss=mean(other),
    )


def equity_frame(portfolio: Portfolio) -> pl.DataFrame:
    """date, equity, drawdown, positions: one row per day, for the report and the page."""
    return pl.DataFrame(
        {
            "date": portfolio.dates,
            "equity": portfolio.equity,
            "drawdown": portfolio.drawdown,
            "positions": portfolio.positions,
        }
    ).with_columns(pl.col("date").cast(pl.Date))
