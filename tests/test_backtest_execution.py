"""Trades as they could be placed: the outcome kernel and the one-position filter against slow
references, each rule on hand-built prices, the costs settings, bars from the store."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.costs import TradeCosts
from backtest.execution import (
    Bars,
    bars_from_prices,
    first_free,
    read_bars,
    rows_of,
    stock_returns,
    trade_outcomes,
)
from backtest.labels import PROFILES
from stockml import store
from tests.conftest import insert_prices


def slow_outcome(o, h, lo, c, t, end, hold, tp, sl):
    """One signal's trade, written as plainly as possible: (entry, exit, entry price, exit
    price, barrier, sessions, both)."""
    if t + 1 >= end or not o[t + 1] > 0:
        return (-1, -1, np.nan, np.nan, np.nan, 0, False)
    entry = o[t + 1]
    upper, lower = entry * (1 + tp), entry * (1 + sl)
    for j in range(t + 1, min(t + hold, end - 1) + 1):
        if j > t + 1 and o[j] <= lower:
            return (t + 1, j, entry, o[j], -1.0, j - t, False)
        if j > t + 1 and o[j] >= upper:
            return (t + 1, j, entry, o[j], 1.0, j - t, False)
        if lo[j] <= lower:
            return (t + 1, j, entry, lower, -1.0, j - t, bool(h[j] >= upper))
        if h[j] >= upper:
            return (t + 1, j, entry, upper, 1.0, j - t, False)
    j = min(t + hold, end - 1)
    return (t + 1, j, entry, c[j], 0.0 if t + hold < end else np.nan, j - t, False)


def slow_outcomes(bars: Bars, rows, hold, tp, sl) -> list[tuple]:
    out = []
    for t in rows:
        k = np.searchsorted(bars.offsets, t, side="right")
        end = bars.offsets[k]
        out.append(slow_outcome(bars.open, bars.high, bars.low, bars.close, t, end, hold, tp, sl))
    return out


def assert_outcomes_equal(ours, expected) -> None:
    fields = ("entry_index", "exit_index", "entry_price", "exit_price", "barrier", "sessions")
    for j, name in enumerate(fields):
        want = np.array([e[j] for e in expected], dtype=float)
        np.testing.assert_array_equal(getattr(ours, name).astype(float), want, err_msg=name)
    np.testing.assert_array_equal(ours.both, [e[6] for e in expected])


def make_bars(blocks: list[list[tuple[float, float, float, float]]]) -> Bars:
    """Bars from per-symbol lists of (open, high, low, close), one weekday each."""
    symbols, rows = [], []
    for k, bars in enumerate(blocks):
        day = date(2021, 1, 4)
        for o, h, lo, c in bars:
            rows.append((f"S{k}", day, o, h, lo, c, c, 1000))
            symbols.append(f"S{k}")
            day += timedelta(days=3 if day.weekday() == 4 else 1)
    frame = pl.DataFrame(
        rows,
        schema=["symbol", "date", "open", "high", "low", "close", "adjclose", "volume"],
        orient="row",
    )
    return bars_from_prices(frame)


FLAT = (100.0, 100.5, 99.5, 100.0)


def one_trade(days, t=0, hold=5, tp=0.10, sl=-0.05):
    bars = make_bars([days])
    return trade_outcomes(bars, np.array([t]), hold, tp, sl).take(0)


def test_entry_is_the_next_sessions_open_and_barriers_follow_it():
    """The fill is session t+1's open, not t's close, and the barriers are set from it."""
    # close 100 on t; opens 104 the next day: the +10 % target is 114.4, not 110
    days = [FLAT, (104, 112, 103, 111), (111, 114.3, 110, 113), (113, 114.4, 112, 114)]
    out = one_trade(days, hold=5)
    assert (out.entry_index, out.entry_price, out.entry_date) == (
        1,
        104.0,
        np.datetime64("2021-01-05"),
    )
    assert out.exit_index == 3 and out.exit_price == pytest.approx(114.4) and out.barrier == 1
    assert out.sessions == 3


def test_entry_sessions_own_range_counts_after_the_fill():
    """The entry session's low reaching the stop exits that same session at the stop."""
    days = [FLAT, (100, 101, 94.9, 96), FLAT, FLAT]
    out = one_trade(days)
    assert (out.exit_index, out.exit_price, out.barrier, out.sessions) == (1, 95.0, -1, 1)


def test_gap_through_the_stop_exits_at_that_open():
    """An open below the stop fills there, worse than the stop."""
    days = [FLAT, FLAT, (90, 92, 88, 91), FLAT]
    out = one_trade(days)
    assert (out.exit_index, out.exit_price, out.barrier) == (2, 90.0, -1)


def test_gap_through_the_target_exits_at_that_open():
    """An open above the target fills there, better than the target."""
    days = [FLAT, FLAT, (115, 116, 108, 109), FLAT]
    out = one_trade(days)
    assert (out.exit_index, out.exit_price, out.barrier) == (2, 115.0, 1)


def test_a_session_touching_both_barriers_is_the_lower_one():
    """Both barriers in one bar: the stop, flagged as such."""
    days = [FLAT, FLAT, (100, 111, 94, 100), FLAT]
    out = one_trade(days)
    assert (out.exit_price, out.barrier, bool(out.both)) == (95.0, -1, True)


def test_hold_limit_exits_at_the_close_of_session_t_plus_h():
    """Neither barrier in sessions t+1..t+H: out at the close of t+H, H sessions held."""
    days = [FLAT] * 3 + [(100, 101, 99, 100.7)] + [FLAT] * 3
    out = one_trade(days, hold=3)
    assert (out.exit_index, out.exit_price, out.barrier, out.sessions) == (3, 100.7, 0, 3)


def test_signal_on_the_last_day_has_no_entry_and_never_crosses_symbols():
    """The last bar of a symbol has no next session, even when another symbol follows."""
    bars = make_bars([[FLAT, FLAT], [(50, 60, 40, 50)] * 3])
    out = trade_outcomes(bars, np.array([1, -1]), 5, 0.1, -0.05)
    assert (out.entry_index == -1).all() and np.isnan(out.entry_price).all()
    assert np.isnat(out.entry_date).all() and not out.entered.any()


def test_data_ending_before_the_hold_limit_leaves_the_trade_open():
    """No barrier before the data end: barrier NaN, marked at the last close."""
    out = one_trade([FLAT, FLAT, (100, 101, 99, 100.3)], hold=5)
    assert (out.exit_index, out.exit_price, out.sessions) == (2, 100.3, 2)
    assert np.isnan(out.barrier)


def test_kernel_equals_slow_reference_on_real_stocks(sp500_bars):
    """Every row of four real stocks, both profiles: the kernel equals the plain loop."""
    symbols = ["AAPL", "JPM", "XOM", "VTRS"]
    bars = bars_from_prices(sp500_bars.filter(pl.col("symbol").is_in(symbols)))
    rows = np.arange(len(bars.close))
    for profile in PROFILES.values():
        args = (profile.hold_days, profile.take_profit, profile.stop_loss)
        ours = trade_outcomes(bars, rows, *args)
        assert_outcomes_equal(ours, slow_outcomes(bars, rows, *args))
        assert ours.entered.sum() == len(rows) - len(symbols)
        assert 0 < ours.both.mean() < 0.05


bar = st.tuples(st.floats(90, 110), st.floats(0, 8), st.floats(0, 8), st.floats(-1, 1)).map(
    lambda x: (x[0], x[0] + x[1], x[0] - x[2], x[0] + x[3] * min(x[1], x[2]))
)


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.lists(bar, min_size=1, max_size=25), min_size=1, max_size=4),
    hold=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_kernel_equals_slow_reference_on_random_bars(blocks, hold, seed):
    """Random bars over several symbols, random rows (some -1): the same as the plain loop."""
    bars = make_bars(blocks)
    rng = np.random.default_rng(seed)
    rows = rng.integers(-1, len(bars.close), size=30)
    ours = trade_outcomes(bars, rows, hold, 0.03, -0.03)
    assert_outcomes_equal(ours, slow_outcomes(bars, rows, hold, 0.03, -0.03))


@pytest.mark.parametrize(
    ("hold", "tp", "sl", "match"),
    [
        (0, 0.1, -0.05, "hold_days"),
        (2.5, 0.1, -0.05, "hold_days"),
        (5, 0.0, -0.05, "take_profit"),
        (5, 0.1, 0.0, "stop_loss"),
        (5, 0.1, -1.0, "stop_loss"),
    ],
)
def test_bad_barriers_are_refused(hold, tp, sl, match):
    bars = make_bars([[FLAT] * 3])
    with pytest.raises(ValueError, match=match):
        trade_outcomes(bars, np.array([0]), hold, tp, sl)


def test_rows_outside_the_bars_are_refused():
    bars = make_bars([[FLAT] * 3])
    with pytest.raises(ValueError, match="flat rows below 3"):
        trade_outcomes(bars, np.array([3]), 5, 0.1, -0.05)


def slow_first_free(code, symbol, entry, exit_):
    """One dict of open positions, written plainly."""
    busy: dict[tuple[int, int], int] = {}
    kept = []
    for s, k, e, x in zip(code, symbol, entry, exit_, strict=True):
        ok = s != 0 and e >= 0 and busy.get((k, s), -1) < e
        if ok:
            busy[(k, s)] = x
        kept.append(ok)
    return np.array(kept, dtype=bool)


def test_one_position_per_symbol_and_side_on_hand_built_rows():
    """A signal while a trade of its symbol and side is open (its exit session included) is
    dropped; the other side and other symbols are independent."""
    bars = make_bars([[FLAT] * 12, [FLAT] * 12])
    # symbol 0: calls on days 0, 2, 5, 6 (each held 6 sessions: 1..6, then 6.. blocked, 7..)
    rows = np.array([0, 2, 5, 6, 2, 0, 1])
    code = np.array([1, 1, 1, 1, -1, 1, 1], dtype=np.int8)
    rows[5:] += 12  # symbol 1
    out = trade_outcomes(bars, rows, 6, 0.5, -0.5)
    symbol = bars.symbol_of_row()[rows]
    kept = first_free(out, code, symbol)
    # day 0 enters on 1, exits on 6: days 2 and 5 enter on 3 and 6, still open; day 6
    # enters on 7, free again. The put on day 2 and symbol 1's first call are free.
    np.testing.assert_array_equal(kept, [True, False, False, True, True, True, False])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(0, 80))
def test_first_free_equals_slow_reference(seed, n):
    """Random signals on three symbols in date order: as the plain dict loop."""
    rng = np.random.default_rng(seed)
    bars = make_bars([[FLAT] * 40 for _ in range(3)])
    day = np.sort(rng.integers(0, 40, size=n))
    symbol = rng.integers(0, 3, size=n)
    rows = symbol * 40 + day
    out = trade_outcomes(bars, rows, int(rng.integers(1, 8)), 0.001, -0.001 * (0.1 + rng.random()))
    code = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=n)
    kept = first_free(out, code, symbol)
    np.testing.assert_array_equal(
        kept, slow_first_free(code, symbol, out.entry_index, out.exit_index)
    )


def test_first_free_refuses_rows_out_of_date_order():
    bars = make_bars([[FLAT] * 10])
    out = trade_outcomes(bars, np.array([5, 1]), 2, 0.1, -0.05)
    with pytest.raises(ValueError, match="date order"):
        first_free(out, np.array([1, 1]), np.array([0, 0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"option_spread": -0.01}, "option_spread"),
        ({"option_spread": 1.0}, "option_spread"),
        ({"stock_slippage": float("nan")}, "stock_slippage"),
        ({"stock_commission": "0.001"}, "stock_commission"),
        ({"stock_commission": 0.6, "stock_slippage": 0.5}, "below 1"),
    ],
)
def test_bad_costs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TradeCosts(**kwargs)


def test_costs_are_charged_once_each_way():
    """A stock trade exiting where it entered loses exactly two sides' costs, either side;
    a gain of 10 % pays the exit side on 1.1 of the stake."""
    costs = TradeCosts(stock_commission=0.001, stock_slippage=0.002)
    days = [FLAT, FLAT, FLAT, (100, 100.5, 99.5, 110)]
    bars = make_bars([days, [FLAT] * 4])
    out = trade_outcomes(bars, np.array([0, 4]), 3, 0.5, -0.5)
    for side in (1, -1):
        r = stock_returns(out, side, costs)
        np.testing.assert_allclose(r.costs, [0.003 * 2.1, 0.003 * 2])
        np.testing.assert_allclose(r.gross, [side * 0.1, 0.0], atol=1e-12)
        np.testing.assert_allclose(r.net, r.gross - r.costs)
    assert np.isnan(stock_returns(out, 0, costs).net).all()


def test_rows_of_finds_pairs_and_marks_unknown_ones():
    bars = make_bars([[FLAT] * 3, [FLAT] * 2])
    found = rows_of(
        bars,
        np.array(["S1", "S0", "S9", "S0"]),
        np.array(["2021-01-05", "2021-01-06", "2021-01-05", "2021-01-09"], dtype="datetime64[D]"),
    )
    np.testing.assert_array_equal(found, [4, 2, -1, -1])
    every = rows_of(bars, np.repeat(bars.symbols, np.diff(bars.offsets)), bars.dates)
    np.testing.assert_array_equal(every, np.arange(5))


def test_read_bars_adjusts_prices_and_joins_vol_20(db_path, sp500_bars):
    """From a real store: adjusted as the labels are, vol_20 NaN until features exist, the
    traded close 4x the split-adjusted one before AAPL's 2020 split."""
    from features.compute import refresh_features

    bars = sp500_bars.filter(
        pl.col("symbol").is_in(["AAPL", "XOM"]) & (pl.col("date").dt.year() == 2020)
    )
    con = store.connect(db_path)
    try:
        insert_prices(con, bars)
        con.execute(
            "INSERT INTO corporate_actions VALUES ('AAPL', DATE '2020-08-31', 'split', 4.0)"
        )
        before = read_bars(con, ["AAPL"])
        assert np.isnan(before.vol_20).all() and list(before.symbols) == ["AAPL"]
        split_day = int(np.searchsorted(before.dates, np.datetime64("2020-08-31")))
        close = bars.filter(pl.col("symbol") == "AAPL")["close"].to_numpy()
        np.testing.assert_array_equal(before.traded_close[:split_day], 4 * close[:split_day])
        np.testing.assert_array_equal(before.traded_close[split_day:], close[split_day:])
        refresh_features(con, progress=False)
        after = read_bars(con)
    finally:
        con.close()
    expected = bars_from_prices(bars)
    np.testing.assert_array_equal(after.close, expected.close)
    np.testing.assert_allclose(after.open, expected.open)
    assert list(after.symbols) == ["AAPL", "XOM"]
    assert np.isnan(after.vol_20[:20]).all() and np.isfinite(after.vol_20[25:200]).all()
