"""The portfolio simulation against a plain-Python reference, its rules on hand-built books,
the statistics against their definitions, buy and hold of the universe."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.costs import TradeCosts
from backtest.execution import bars_from_prices, first_free, trade_outcomes
from backtest.portfolio import (
    Book,
    Sizing,
    drawdown_length,
    equity_frame,
    hold_universe,
    portfolio_stats,
    simulate,
    stock_book,
)
from tests.test_backtest_execution import FLAT, make_bars

DAYS = np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-03-01"))


def slow_simulate(book: Book, days, sizing: Sizing):
    """The rules, one day and one trade at a time, with dicts."""
    day_of = {d: i for i, d in enumerate(days)}
    n = len(book.symbol)
    order = sorted(
        (i for i in range(n) if book.entry_date[i] in day_of),
        key=lambda i: (day_of[book.entry_date[i]], -book.priority[i], book.symbol[i], i),
    )
    cash, previous = sizing.initial, sizing.initial
    open_: dict[int, dict] = {}  # trade -> stake, value, next mark
    taken, equity, held = np.zeros(n, bool), [], []
    for d, day in enumerate(days):
        for i in [i for i in order if day_of[book.entry_date[i]] == d]:
            if any(book.symbol[j] == book.symbol[i] for j in open_):
                continue
            stake = min(previous / sizing.max_positions, cash / (1 + book.entry_cost[i]))
            if len(open_) >= sizing.max_positions or stake <= 0:
                continue
            cash -= stake * (1 + book.entry_cost[i])
            open_[i] = {"stake": stake, "value": stake, "next": book.mark_start[i]}
            taken[i] = True
        held.append(len(open_))
        for i in list(open_):
            p = open_[i]
            end = book.mark_start[i + 1]
            while p["next"] < end and book.mark_date[p["next"]] <= day:
                p["value"] = p["stake"] * book.mark_value[p["next"]]
                p["next"] += 1
            if p["next"] == end and book.closed[i]:
                cash += p["value"] - p["stake"] * book.exit_cost[i]
                del open_[i]
        equity.append(cash + sum(p["value"] for p in open_.values()))
        previous = equity[-1]
    return np.array(equity), np.array(held), taken


def random_book(rng, n: int) -> Book:
    """n trades on 4 symbols, entries anywhere in DAYS (some outside), 1-6 marks each."""
    length = rng.integers(1, 7, size=n)
    start = np.concatenate([[0], np.cumsum(length)]).astype(np.int64)
    entry = DAYS[0] + rng.integers(-3, len(DAYS) + 3, size=n).astype("timedelta64[D]")
    first = np.isin(np.arange(start[-1]), start[:-1])
    gaps = np.where(first, 0, 1 + rng.integers(0, 3, size=start[-1]))
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[start[:-1]], length)
    marks = np.repeat(entry, length) + offset.astype("timedelta64[D]")
    values = np.exp(rng.normal(0, 0.2, size=start[-1]))
    ratio_last = values[start[1:] - 1]
    return Book(
        symbol=rng.integers(0, 4, size=n).astype(np.int64),
        entry_date=entry,
        mark_start=start,
        mark_date=marks,
        mark_value=values,
        closed=rng.random(n) < 0.9,
        entry_cost=np.full(n, 0.01),
        exit_cost=0.01 * ratio_last,
        priority=rng.integers(0, 3, size=n).astype(float),
    )


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(0, 60), cap=st.integers(1, 5))
def test_kernel_equals_slow_reference(seed, n, cap):
    """Random books (overlaps, cap, priorities, open trades, days off the grid): the same
    equity, positions and trades taken as the plain loop."""
    book = random_book(np.random.default_rng(seed), n)
    sizing = Sizing(max_positions=cap, initial=100.0)
    ours = simulate(book, DAYS, sizing)
    equity, held, taken = slow_simulate(book, DAYS, sizing)
    np.testing.assert_allclose(ours.equity, equity, rtol=1e-12)
    np.testing.assert_array_equal(ours.positions, held)
    np.testing.assert_array_equal(ours.taken, taken)
    assert ours.skipped_busy + ours.skipped_full <= n - taken.sum()


def hand_bars():
    """Symbol S0 rises 1 % a day from 100; S1 stays flat at 50."""
    up = [
        (100 * 1.01**k, 100 * 1.01**k * 1.002, 100 * 1.01**k * 0.998, 100 * 1.01 ** (k + 0.5))
        for k in range(30)
    ]
    return make_bars([up, [(50.0, 50.2, 49.8, 50.0)] * 30])


def test_equity_is_marked_at_each_close_and_costs_are_charged_once_each_way():
    """One stock trade: the equity moves with the close while held, pays the entry cost on
    the stake and the exit cost on the exit value, once each."""
    bars = hand_bars()
    k = 0.001
    out = trade_outcomes(bars, np.array([0]), 5, 0.5, -0.5)
    book = stock_book(bars, out, 1, TradeCosts(stock_commission=0.0, stock_slippage=k))
    pf = simulate(book, bars.dates[:30], Sizing(max_positions=2))
    entry = bars.open[1]
    stake = 0.5
    cash = 1.0 - stake * (1 + k)
    np.testing.assert_allclose(pf.equity[0], 1.0)
    for j in range(1, 5):  # held sessions 1..4: marked at the close
        np.testing.assert_allclose(pf.equity[j], cash + stake * bars.close[j] / entry)
    exit_ratio = bars.close[5] / entry
    after = cash + stake * exit_ratio * (1 - k)
    np.testing.assert_allclose(pf.equity[5:], after)
    np.testing.assert_allclose(book.net_return, exit_ratio - 1 - k * (1 + exit_ratio))
    np.testing.assert_array_equal(pf.positions[:7], [0, 1, 1, 1, 1, 1, 0])


def test_put_side_gains_as_the_stock_falls():
    """A short stock book gains what the stock loses."""
    bars = make_bars([[(100.0 - k, 100.5 - k, 99.5 - k, 99.8 - k) for k in range(10)]])
    out = trade_outcomes(bars, np.array([0]), 3, 0.5, -0.5)
    book = stock_book(bars, out, -1, TradeCosts(stock_slippage=0.0))
    pf = simulate(book, bars.dates, Sizing(max_positions=1))
    assert pf.equity[3] == pytest.approx(1 + (bars.open[1] - bars.close[3]) / bars.open[1])


def test_cap_skips_the_lowest_priority_and_one_position_per_symbol():
    """Three trades on one day with room for two: the two highest priorities enter; a trade
    of a held symbol is skipped even with a free slot."""
    bars = make_bars([[FLAT] * 10 for _ in range(4)])
    rows = np.array([0, 10, 20, 30, 2])
    out = trade_outcomes(bars, rows, 5, 0.5, -0.5)
    book = stock_book(bars, out, 1, priority=np.array([0.1, 0.3, 0.2, 0.0, 9.0]))
    pf = simulate(book, bars.dates[:10], Sizing(max_positions=3))
    np.testing.assert_array_equal(pf.taken, [True, True, True, False, False])
    assert (pf.skipped_full, pf.skipped_busy) == (1, 1)
    pf = simulate(book, bars.dates[:10], Sizing(max_positions=2))
    np.testing.assert_array_equal(pf.taken, [False, True, True, False, False])


def test_a_slot_freed_by_an_exit_is_used_from_the_next_session():
    """An exit on day d frees its slot for entries on d+1, not at d's open."""
    bars = make_bars([[FLAT] * 12, [FLAT] * 12])
    out = trade_outcomes(bars, np.array([0, 12 + 4, 12 + 5]), 5, 0.5, -0.5)
    book = stock_book(bars, out, 1)
    pf = simulate(book, bars.dates[:12], Sizing(max_positions=1))
    # trade 0 holds sessions 1..5; the signal on day 4 enters on 5: full; the one on 5 on 6
    np.testing.assert_array_equal(pf.taken, [True, False, True])


def test_stock_book_of_first_free_trades_equals_the_outcomes():
    """Trades kept by the one-position filter and a cap high enough take every trade, and
    each trade's return is its stock return after costs."""
    bars = hand_bars()
    rows = np.arange(0, 25, 3)
    out = trade_outcomes(bars, rows, 4, 0.05, -0.05)
    kept = first_free(out, np.ones(len(rows)), np.zeros(len(rows), dtype=int))
    book = stock_book(bars, out.take(kept), 1)
    pf = simulate(book, bars.dates[:30], Sizing(max_positions=20))
    assert pf.taken.all() and len(book.symbol) == kept.sum()


def test_statistics_follow_their_definitions():
    """Total and annual return, Sharpe, Sortino, drawdown depth and length, exposure, hit
    rate and mean win / loss, computed by hand on a short curve."""
    up = hand_bars()
    down = [
        (50 * 0.99**k, 50.2 * 0.99**k, 49.8 * 0.99**k, 50 * 0.99 ** (k + 0.5)) for k in range(30)
    ]
    bars = make_bars(
        [list(zip(up.open[:30], up.high[:30], up.low[:30], up.close[:30], strict=True)), down]
    )
    out = trade_outcomes(bars, np.array([0, 10, 40]), 3, 0.5, -0.5)
    book = stock_book(bars, out, 1, TradeCosts(stock_slippage=0.0))
    pf = simulate(book, bars.dates[:30], Sizing(max_positions=2))
    stats = portfolio_stats(pf, book)
    r = pf.returns
    assert stats.total_return == pytest.approx(pf.equity[-1] - 1)
    assert stats.annual_return == pytest.approx(pf.equity[-1] ** (252 / 30) - 1)
    assert stats.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert stats.sortino == pytest.approx(r.mean() / downside * np.sqrt(252))
    assert stats.max_drawdown == pytest.approx(pf.drawdown.min())
    assert stats.exposure == pytest.approx(np.mean(pf.positions > 0))
    net = book.net_return[pf.taken]
    assert stats.trades == 3 and stats.hit_rate == pytest.approx(2 / 3)
    assert stats.mean_win == pytest.approx(net[net > 0].mean())
    assert stats.mean_loss == pytest.approx(net[net <= 0].mean())


@pytest.mark.parametrize(
    ("equity", "length"),
    [
        ([1.1, 1.2, 1.3], 0),
        ([1.1, 0.9, 1.0, 1.1, 1.2], 3),  # peak day 1, back at 1.1 on day 4
        ([1.1, 0.9, 1.0], 2),  # never back: until the last day
        ([0.9, 0.8, 1.0], 3),  # the starting capital is the first peak
        ([1.2, 1.0, 1.2, 0.8, 0.9], 2),  # the deepest trough's episode, not the longest
    ],
)
def test_drawdown_length(equity, length):
    assert drawdown_length(np.array(equity), 1.0) == length


def test_hold_universe_is_equal_weight_buy_and_hold():
    """Two symbols, half the capital each at the first open, marked at each close."""
    bars = hand_bars()
    _, pf = hold_universe(bars, bars.dates[:30], TradeCosts(stock_slippage=0.0))
    a = bars.close[:30] / bars.open[0]
    b = bars.close[30:60] / bars.open[30]
    np.testing.assert_allclose(pf.equity, 0.5 * a + 0.5 * b)
    assert pf.taken.all() and (pf.positions == 2).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_positions": 0}, "max_positions"),
        ({"max_positions": 2.5}, "max_positions"),
        ({"initial": 0.0}, "initial"),
    ],
)
def test_bad_sizing_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sizing(**kwargs)


def test_bad_days_are_refused():
    bars = hand_bars()
    book = stock_book(bars, trade_outcomes(bars, np.array([0]), 3, 0.5, -0.5), 1)
    with pytest.raises(ValueError, match="increasing"):
        simulate(book, bars.dates[::-1], Sizing())


def test_equity_frame_has_one_row_per_day():
    bars = hand_bars()
    book = stock_book(bars, trade_outcomes(bars, np.array([0]), 3, 0.5, -0.5), 1)
    frame = equity_frame(simulate(book, bars.dates[:30], Sizing()))
    assert frame.columns == ["date", "equity", "drawdown", "positions"]
    assert frame.height == 30 and frame["date"].dtype == pl.Date


def test_real_stocks_portfolio_runs_and_equals_reference(sp500_bars):
    """Real prices, random signals thinned by the one-position rule, 5 slots: the kernel
    equals the reference and the book's trades are the filter's."""
    prices = sp500_bars.filter(pl.col("symbol").is_in(["AAPL", "JPM", "XOM"]))
    bars = bars_from_prices(prices.filter(pl.col("date").dt.year() >= 2019))
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(len(bars.close), size=300, replace=False))
    out = trade_outcomes(bars, rows, 14, 0.10, -0.05)
    symbol = bars.symbol_of_row()[rows]
    order = np.lexsort((symbol, bars.dates[rows]))
    kept = first_free(out.take(order), np.ones(len(rows)), symbol[order])
    book = stock_book(bars, out.take(order[kept]), 1)
    days = np.unique(bars.dates)
    pf = simulate(book, days, Sizing(max_positions=2))
    equity, _, taken = slow_simulate(book, days, Sizing(max_positions=2))
    np.testing.assert_allclose(pf.equity, equity, rtol=1e-12)
    np.testing.assert_array_equal(pf.taken, taken)
    assert 0 < pf.taken.sum() < len(book.symbol)
