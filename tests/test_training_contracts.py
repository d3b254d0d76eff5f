"""The suggested contract (strike, expiry, sessions, premium) and the option trade as placed:
Black-Scholes at the fill and at the exit, costs once each way, marks for the portfolio."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from backtest.costs import TradeCosts
from backtest.execution import bars_from_prices, trade_outcomes
from backtest.portfolio import Sizing, simulate
from tests.test_backtest_execution import make_bars
from training.contracts import (
    ContractTerms,
    TradingCalendar,
    atm_strike,
    contracts_frame,
    strike_increment,
    suggest_contracts,
)
from training.option_trades import option_book, option_trades
from training.options import annualised_vol_from_feature, black_scholes

D = np.datetime64


@pytest.mark.parametrize(
    ("price", "step", "strike"),
    [
        (3.1, 2.5, 2.5),
        (11.25, 2.5, 12.5),  # a half-way tie goes up
        (24.99, 2.5, 25.0),
        (25.0, 5.0, 25.0),
        (101.0, 5.0, 100.0),
        (197.6, 5.0, 200.0),
        (200.0, 10.0, 200.0),
        (1234.0, 10.0, 1230.0),
        (0.4, 2.5, 2.5),  # never a zero strike
    ],
)
def test_atm_strike_at_the_listed_interval(price, step, strike):
    assert strike_increment(price) == step
    assert atm_strike(price) == strike


def test_atm_strike_of_nothing_is_nan():
    assert np.isnan(atm_strike(np.array([np.nan, 0.0, -3.0]))).all()


def test_calendar_knows_holidays_and_closures():
    """The next session skips weekends, holidays and the 2001 and 2012 closures."""
    cal = TradingCalendar.covering(D("2001-01-01"), D("2024-12-31"))
    signal = np.array(
        ["2024-07-03", "2024-03-28", "2001-09-10", "2012-10-26", "2024-12-27"], "M8[D]"
    )
    np.testing.assert_array_equal(
        cal.next_session(signal),
        np.array(["2024-07-05", "2024-04-01", "2001-09-17", "2012-10-31", "2024-12-30"], "M8[D]"),
    )
    # 14 sessions counting 2024-07-05 as the first: ends 2024-07-24
    assert cal.session_offset(np.array(["2024-07-05"], "M8[D]"), 13)[0] == D("2024-07-24")


def test_monthly_expiry_is_the_third_friday_or_the_session_before_a_holiday():
    cal = TradingCalendar.covering(D("2022-01-01"), D("2022-12-31"))
    expiries = set(cal.expiries.tolist())
    assert date(2022, 1, 21) in expiries and date(2022, 6, 17) in expiries
    assert date(2022, 4, 14) in expiries and date(2022, 4, 15) not in expiries  # Good Friday


def test_expiry_nearest_thirty_days_that_outlives_the_hold():
    """Nearest to entry + 30 days, never before the last exit day, a tie to the later."""
    cal = TradingCalendar.covering(D("2024-01-01"), D("2024-12-31"))
    entry = np.array(["2024-07-05", "2024-07-05", "2024-05-20"], "M8[D]")
    last_exit = np.array(["2024-07-11", "2024-07-24", "2024-05-24"], "M8[D]")
    # 2024-07-05 + 30 = 08-04: Aug 16 (12 days) beats Jul 19 (16 days); 05-20 + 30 = 06-19:
    # Jun 21 (2 days). With the hold ending 07-24 the July expiry is out anyway.
    np.testing.assert_array_equal(
        cal.expiry_for(entry, last_exit, 30),
        np.array(["2024-08-16", "2024-08-16", "2024-06-21"], "M8[D]"),
    )
    # 2024-06-03 + 30 = 07-03: Jun 21 is 12 days before, Jul 19 16 after; a hold to 06-24
    # rules June out
    late = cal.expiry_for(np.array(["2024-06-03"], "M8[D]"), np.array(["2024-06-24"], "M8[D]"), 30)
    assert late[0] == D("2024-07-19")


def test_suggested_contract_for_a_call_and_a_put():
    """Act on the next open, ATM strike, expiry, Black-Scholes premium at vol_20 sqrt(252),
    target and stop from the close, the last exit day; HOLD gets nothing."""
    c = suggest_contracts(
        np.array(["2024-07-03", "2024-07-03", "2024-07-03"], "M8[D]"),
        np.array([101.3, 57.0, 80.0]),
        np.array([0.02, 0.015, 0.01]),
        np.array([1, -1, 0]),
        14,
        0.10,
        -0.05,
    )
    assert c.act_on[0] == D("2024-07-05") and c.last_exit[0] == D("2024-07-24")
    assert c.expiry[0] == D("2024-08-16") and c.strike.tolist()[:2] == [100.0, 55.0]
    years = (D("2024-08-16") - D("2024-07-05")).astype(int) / 365
    expected = black_scholes(101.3, 100.0, years, 0.02 * np.sqrt(252), 0.04, side=1)
    assert c.premium[0] == pytest.approx(float(expected))
    assert c.premium[1] == pytest.approx(
        float(black_scholes(57.0, 55.0, years, 0.015 * np.sqrt(252), 0.04, side=-1))
    )
    assert c.target_price[0] == pytest.approx(111.43) and c.stop_price[1] == pytest.approx(54.15)
    assert np.isnat(c.act_on[2]) and np.isnan(c.premium[2]) and np.isnan(c.strike[2])


def test_contracts_frame_adds_the_columns_and_keeps_hold_rows_empty():
    signals = pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "date": [date(2024, 7, 3), date(2024, 7, 3)],
            "signal": ["BUY CALL", "HOLD"],
            "close": [101.3, 20.0],
            "vol_20": [0.02, None],
        }
    )
    out = contracts_frame(signals, 5, 0.03, -0.03)
    row = out.row(0, named=True)
    assert row["act_on"] == date(2024, 7, 5) and row["last_exit"] == date(2024, 7, 11)
    assert row["expiry"] == date(2024, 8, 16) and row["strike"] == 100.0
    assert out.row(1, named=True)["strike"] is None and out["act_on"].dtype == pl.Date
    with pytest.raises(ValueError, match="close"):
        contracts_frame(signals.drop("close"), 5, 0.03, -0.03)
    with pytest.raises(ValueError, match="unknown signal"):
        contracts_frame(signals.with_columns(pl.lit("SELL").alias("signal")), 5, 0.03, -0.03)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"target_days": 0}, "target_days"), ({"rate": 0.5}, "rate"), ({"min_premium": -1}, "min")],
)
def test_bad_contract_terms_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContractTerms(**kwargs)


def option_bars(vol_20: float = 0.02):
    """One symbol from 2021-01-04 on weekdays: flat at 100, then a jump to the target."""
    days = (
        [(100.0, 100.5, 99.5, 100.0)] * 4
        + [(100.5, 111.0, 100.0, 110.0)]
        + [(110.0, 110.5, 109.5, 110.0)] * 30
    )
    bars = make_bars([days])
    return bars._replace(vol_20=np.full(len(bars.close), vol_20))


def test_option_trade_is_bought_at_the_fill_and_sold_at_the_exit():
    """A call on day 0: bought at session 1's open at Black-Scholes with day 0's vol, sold at
    the target on session 4 with that day's vol and time left; spread once each way."""
    bars = option_bars()
    out = trade_outcomes(bars, np.array([0]), 14, 0.10, -0.05)
    assert out.exit_index[0] == 4 and out.barrier[0] == 1
    costs = TradeCosts(option_spread=0.02)
    trades = option_trades(bars, np.array([0]), out, 1, 14, costs)
    vol = 0.02 * np.sqrt(252)
    expiry = trades.expiry[0]
    years_in = (expiry - out.entry_date[0]).astype(int) / 365
    years_out = (expiry - out.exit_date[0]).astype(int) / 365
    p0 = float(black_scholes(100.0, 100.0, years_in, vol, 0.04, side=1))
    p1 = float(black_scholes(110.0, 100.0, years_out, vol, 0.04, side=1))
    assert trades.entry_premium[0] == pytest.approx(p0)
    assert trades.exit_premium[0] == pytest.approx(p1)
    assert trades.gross[0] == pytest.approx(p1 / p0 - 1)
    assert trades.costs[0] == pytest.approx(0.02 * (1 + p1 / p0))
    assert trades.net[0] == pytest.approx(p1 / p0 - 1 - 0.02 * (1 + p1 / p0))
    put = option_trades(bars, np.array([0]), out, -1, 14, costs)
    assert put.net[0] < -0.5 < 1.0 < trades.net[0]


def test_option_trade_needs_volatility_and_a_market():
    """No vol_20 at the signal day: no price; a premium under the minimum: not bought."""
    bars = option_bars()
    bars.vol_20[0] = np.nan
    out = trade_outcomes(bars, np.array([0, 1]), 14, 0.10, -0.05)
    trades = option_trades(bars, np.array([0, 1]), out, 1, 14)
    assert np.isnan(trades.net[0]) and np.isfinite(trades.net[1])
    tiny = option_trades(
        bars, np.array([1]), out.take([1]), 1, 14, terms=ContractTerms(min_premium=50)
    )
    assert np.isnan(tiny.net[0])


def test_strike_is_listed_on_the_traded_price_before_a_split():
    """Before a 4:1 split the stock traded at 4x its split-adjusted price: the strike is
    chosen there and priced in adjusted units, so the option is at the money."""
    rows = [("S", date(2020, 1, 1 + k), 24.0, 24.2, 23.8, 24.0, 24.0, 1) for k in range(20)]
    frame = pl.DataFrame(
        rows,
        schema=["symbol", "date", "open", "high", "low", "close", "adjclose", "volume"],
        orient="row",
    )
    splits = pl.DataFrame({"symbol": ["S"], "date": [date(2020, 1, 15)], "ratio": [4.0]})
    bars = bars_from_prices(frame, splits=splits)
    bars = bars._replace(vol_20=np.full(20, 0.02))
    assert bars.traded_close[0] == 96.0 and bars.traded_close[14] == 24.0
    out = trade_outcomes(bars, np.array([0]), 3, 0.1, -0.05)
    trades = option_trades(bars, np.array([0]), out, 1, 3)
    assert trades.strike[0] == 95.0 and trades.scale[0] == 0.25
    years = (trades.expiry[0] - out.entry_date[0]).astype(int) / 365
    expected = black_scholes(24.0, 23.75, years, 0.02 * np.sqrt(252), 0.04, side=1)
    assert trades.entry_premium[0] == pytest.approx(float(expected))


def test_option_book_marks_at_black_scholes_each_close():
    """The book's marks are Black-Scholes at each close over the entry premium, the last one
    the exit; simulated, the equity follows them."""
    bars = option_bars()
    out = trade_outcomes(bars, np.array([0]), 14, 0.10, -0.05)
    book, trades = option_book(bars, np.array([0]), out, 1, 14, TradeCosts(option_spread=0.0))
    vol = annualised_vol_from_feature(0.02)
    years = (trades.expiry[0] - bars.dates[1:4]).astype(int) / 365
    marks = black_scholes(bars.close[1:4], 100.0, years, vol, 0.04, side=1)
    np.testing.assert_allclose(book.mark_value[:3], marks / trades.entry_premium[0])
    assert book.mark_value[3] == pytest.approx(trades.exit_premium[0] / trades.entry_premium[0])
    pf = simulate(book, bars.dates, Sizing(max_positions=1))
    assert pf.equity[3] == pytest.approx(book.mark_value[2])
    assert pf.equity[-1] == pytest.approx(1 + trades.net[0])


def test_option_trades_of_all_rows_indexed_equal_those_of_the_signals(sp500_bars):
    """Computed once for every row and indexed by a rule's rows, the option trades are those
    computed for the rule's rows alone (the lead computes once per window and side)."""
    from features.compute import compute_features

    prices = sp500_bars.filter(
        pl.col("symbol").is_in(["AAPL", "KO"]) & (pl.col("date").dt.year() >= 2018)
    )
    vol = compute_features(prices).select("symbol", "date", "vol_20")
    bars = bars_from_prices(prices, vol)
    rows = np.arange(len(bars.close))
    out = trade_outcomes(bars, rows, 5, 0.03, -0.03)
    every = option_trades(bars, rows, out, -1, 5)
    pick = np.flatnonzero(np.random.default_rng(1).random(len(rows)) < 0.1)
    some = option_trades(bars, rows[pick], out.take(pick), -1, 5)
    for name in every._fields:
        np.testing.assert_array_equal(getattr(every, name)[pick], getattr(some, name))
    assert np.isfinite(some.net).mean() > 0.9


def test_trade_columns_are_the_signal_trades_columns(db_path):
    """The frame trade_columns builds, with the run's keys added, writes into signal_trades
    and reads back: entry day and fill, days held, outcome, returns after costs, costs."""
    from datetime import date as day

    from backtest.execution import stock_returns
    from stockml import store
    from training.option_trades import trade_columns

    bars = option_bars()
    rows = np.array([0, len(bars.close) - 1])
    out = trade_outcomes(bars, rows, 14, 0.10, -0.05)
    costs = TradeCosts()
    frame = trade_columns(
        out, stock_returns(out, 1, costs), option_trades(bars, rows, out, 1, 14, costs)
    )
    keys = pl.DataFrame(
        {
            "run_id": ["r", "r"],
            "window": ["1", "1"],
            "symbol": ["S0", "S0"],
            "date": bars.dates[rows],
            "signal": ["BUY CALL", "BUY CALL"],
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    info = dict.fromkeys(("train_start", "train_end", "test_start", "test_end"))
    info |= {"n_train": 1, "n_test": 1}
    con = store.connect(db_path)
    try:
        trades = pl.concat([keys, frame], how="horizontal")
        store.record_training_run(con, "r", "swing", info, "f", "c", "{}", "d", [], trades)
        got = con.execute(
            "SELECT entry_date, entry_price, days_held, outcome, costs FROM signal_trades "
            "ORDER BY date"
        ).fetchall()
    finally:
        con.close()
    assert got[0][:4] == (day(2021, 1, 5), 100.0, 4, 1) and got[0][4] > 0.06
    assert got[1] == (None, None, 0, None, None)  # the last day: no entry
    with pytest.raises(ValueError, match="costs_of"):
        trade_columns(out, stock_returns(out, 1), option_trades(bars, rows, out, 1, 14), "fx")
