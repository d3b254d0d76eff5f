"""Decisions, thresholds, trade statistics and the equity curve on hand-made examples."""

from __future__ import annotations

import numpy as np
import pytest

from training.trades import choose_threshold, decide, equity_curve, signal_stats


def test_decide_calls_puts_holds_and_settles_conflicts_by_margin():
    """Columns are (loss, timeout, win); t_call 0.5, t_put 0.25 (binary fractions, so the
    margins below are exact). row 0: p_win .625 -> CALL; row 1: p_loss .5 -> PUT;
    row 2: neither -> HOLD; row 3: both, call margin .0625 < put margin .125 -> PUT;
    row 4: both, call margin .125 > put margin .0625 -> CALL;
    row 5: both, equal margins .125 -> HOLD; row 6: NaN -> HOLD."""
    proba = np.array(
        [
            [0.125, 0.25, 0.625],
            [0.5, 0.25, 0.25],
            [0.125, 0.5, 0.375],
            [0.375, 0.0625, 0.5625],
            [0.3125, 0.0625, 0.625],
            [0.375, 0.0, 0.625],
            [np.nan, np.nan, np.nan],
        ]
    )
    got = decide(proba, t_call=0.5, t_put=0.25)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [1, -1, 0, -1, 1, 0, 0])


def test_decide_fires_at_the_threshold_and_never_for_inf_or_nan_thresholds():
    """p >= t fires (equality included); an inf or NaN threshold switches a side off."""
    proba = np.array([[0.2, 0.3, 0.5], [0.5, 0.3, 0.2]])
    np.testing.assert_array_equal(decide(proba, 0.5, 0.5), [1, -1])
    np.testing.assert_array_equal(decide(proba, np.inf, 0.5), [0, -1])
    np.testing.assert_array_equal(decide(proba, 0.5, np.nan), [1, 0])


def test_decide_refuses_a_matrix_without_three_columns():
    """Two columns is a programming error."""
    with pytest.raises(ValueError, match="shape"):
        decide(np.zeros((4, 2)), 0.5, 0.5)


# p sorted high to low with hits 1,0,1,1,1,0,1,0,0,0 (0.8 appears twice):
# rows >= .9: 1 of 1; >= .8: 2 of 3; >= .7: 3 of 4; >= .6: 4 of 5; >= .5: 4 of 6;
# >= .4: 5 of 7; >= .3: 5 of 8 ...
P = np.array([0.5, 0.9, 0.8, 0.4, 0.7, 0.3, 0.8, 0.2, 0.6, 0.1])
HIT = np.array([0, 1, 0, 1, 1, 0, 1, 0, 1, 0], dtype=bool)


@pytest.mark.parametrize(
    ("min_coverage", "threshold", "precision", "coverage"),
    [(0.1, 0.9, 1.0, 0.1), (0.2, 0.6, 0.8, 0.5), (0.5, 0.6, 0.8, 0.5), (0.6, 0.4, 5 / 7, 0.7)],
)
def test_threshold_maximises_precision_under_the_coverage_floor(
    min_coverage, threshold, precision, coverage
):
    """Precision 1 at t=.9 needs only 10% coverage; from 20% the best is 4 of 5 at t=.6
    (the tied .8 rows enter together: t=.8 signals 3 rows, 2/3); from 60% it is 5 of 7
    at t=.4."""
    got = choose_threshold(P, HIT, min_coverage)
    assert (got.threshold, got.coverage) == (threshold, coverage)
    assert got.precision == pytest.approx(precision)
    assert f"t={threshold:.4f}" in got.reason


def test_threshold_ties_in_precision_keep_the_most_trades():
    """All hits: every threshold has precision 1, the lowest (all rows) is kept."""
    got = choose_threshold(np.array([0.3, 0.2, 0.1]), np.ones(3, bool), 0.0)
    assert (got.threshold, got.precision, got.coverage) == (0.1, 1.0, 1.0)


def test_threshold_from_a_grid_counts_rows_at_or_above_each_value():
    """Grid .55/.65/.85 on P: coverages .5/.4/.1, precisions .8/.75/1; floor .35 -> .55."""
    got = choose_threshold(P, HIT, 0.35, grid=np.array([0.85, 0.65, 0.55]))
    assert (got.threshold, got.precision, got.coverage) == (0.55, 0.8, 0.5)


def test_nan_scores_never_signal_but_count_in_coverage():
    """Two NaN rows of four: the best threshold covers 1 of 4 rows, not 1 of 2."""
    got = choose_threshold(np.array([np.nan, 0.9, np.nan, 0.1]), np.array([1, 1, 1, 0], bool))
    assert (got.threshold, got.precision, got.coverage) == (0.9, 1.0, 0.25)


@pytest.mark.parametrize(
    ("p", "hit", "grid"),
    [
        (np.array([]), np.array([], bool), None),
        (np.array([np.nan]), np.ones(1, bool), [0.5]),
        (P, HIT, np.array([0.95])),
    ],
)
def test_no_threshold_reaching_the_floor_means_never_signal(p, hit, grid):
    """Nothing to rank, or a grid above every score: threshold inf, precision NaN."""
    got = choose_threshold(p, hit, 0.1, grid=grid)
    assert got.threshold == np.inf and np.isnan(got.precision) and got.coverage == 0.0
    assert "never signal" in got.reason


@pytest.mark.parametrize(
    ("p", "hit", "min_coverage", "match"),
    [(P, HIT[:5], 0.1, "one length"), (P, HIT, 1.5, "min_coverage")],
)
def test_bad_threshold_arguments_are_refused(p, hit, min_coverage, match):
    """Mismatched lengths and impossible coverage floors are programming errors."""
    with pytest.raises(ValueError, match=match):
        choose_threshold(p, hit, min_coverage)


def test_signal_stats_on_a_hand_made_book():
    """Five rows: two calls (a win +5% in 3 days, a timeout -1% in 10 days), one put on a
    loss (stock -4% in 2 days: the put trader gains +4%), two holds.
    calls: precision 1/2, hit rate 1/2, stock mean 2%, median 2%, worst -1%, 6.5 days;
    puts: precision 1, stock +4%; option returns: calls .8 and NaN -> 1 trade, put -.2."""
    signals = np.array([1, 1, -1, 0, 0])
    y = np.array([1, 0, -1, 1, -1])
    exit_return = np.array([0.05, -0.01, -0.04, 0.05, -0.05])
    exit_offset = np.array([3, 10, 2, 3, 1])
    option = np.array([0.8, np.nan, -0.2, np.nan, np.nan])
    got = signal_stats(signals, y, exit_return, exit_offset, option)
    expected = {
        "call_trades": 2, "call_coverage": 0.4, "call_precision": 0.5, "call_hit_rate": 0.5,
        "call_mean_stock_return": 0.02, "call_median_stock_return": 0.02,
        "call_worst_stock_return": -0.01, "call_mean_days_held": 6.5, "call_option_trades": 1,
        "call_mean_option_return": 0.8, "call_median_option_return": 0.8,
        "call_worst_option_return": 0.8,
        "put_trades": 1, "put_coverage": 0.2, "put_precision": 1.0, "put_hit_rate": 1.0,
        "put_mean_stock_return": 0.04, "put_median_stock_return": 0.04,
        "put_worst_stock_return": 0.04, "put_mean_days_held": 2.0, "put_option_trades": 1,
        "put_mean_option_return": -0.2, "put_median_option_return": -0.2,
        "put_worst_option_return": -0.2,
    }  # fmt: skip
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_signal_stats_without_trades_or_options():
    """No puts: put_trades 0 and NaN statistics; without option returns no option keys."""
    got = signal_stats(np.array([1, 0]), np.array([1, 0]), np.array([0.03, 0.0]), np.ones(2))
    assert got["put_trades"] == 0 and np.isnan(got["put_precision"])
    assert np.isnan(got["put_mean_stock_return"]) and got["put_coverage"] == 0.0
    assert not any("option" in key for key in got)


def test_signal_stats_refuses_mismatched_lengths():
    """One array shorter than the others is a programming error."""
    with pytest.raises(ValueError, match="one value per row"):
        signal_stats(np.ones(3), np.ones(3), np.ones(2), np.ones(3))


def test_equity_curve_compounds_daily_baskets_and_tracks_drawdown():
    """Day 1: trades +10% and +30% -> +20%; day 2: -50%; day 3: +50% (unsorted input).
    equity 1.2, 0.6, 0.9; peak 1.2; drawdown 0, -0.5, -0.25; max drawdown -0.5."""
    dates = np.array(["2024-01-03", "2024-01-02", "2024-01-04", "2024-01-02"], "datetime64[D]")
    curve = equity_curve(dates, np.array([-0.5, 0.1, 0.5, 0.3]))
    np.testing.assert_array_equal(
        curve.dates, np.array(["2024-01-02", "2024-01-03", "2024-01-04"], "datetime64[D]")
    )
    np.testing.assert_allclose(curve.equity, [1.2, 0.6, 0.9])
    np.testing.assert_allclose(curve.drawdown, [0.0, -0.5, -0.25])
    assert curve.max_drawdown == pytest.approx(-0.5)


def test_equity_curve_with_a_fraction_staked_and_a_first_day_loss():
    """Staking 10%: day returns -10% * 0.1 = -1%, then +2% (equity 1.0098, a new peak);
    drawdown counts from the start 1: -1%, then 0. NaN returns are left out."""
    curve = equity_curve(np.array([1, 2, 2]), np.array([-0.1, 0.2, np.nan]), fraction=0.1)
    np.testing.assert_allclose(curve.equity, [0.99, 0.99 * 1.02])
    np.testing.assert_allclose(curve.drawdown, [-0.01, 0.0])
    assert curve.max_drawdown == pytest.approx(-0.01)


def test_equity_curve_of_no_trades_is_empty():
    """Nothing traded: no points, no drawdown."""
    curve = equity_curve(np.array([], "datetime64[D]"), np.array([]))
    assert len(curve.equity) == 0 and curve.max_drawdown == 0.0


@pytest.mark.parametrize(("n", "fraction", "match"), [(2, 1.0, "one length"), (3, 0.0, "fraction")])
def test_equity_curve_refuses_bad_arguments(n, fraction, match):
    """Mismatched lengths and a stake outside (0, 1] are programming errors."""
    with pytest.raises(ValueError, match=match):
        equity_curve(np.arange(3), np.zeros(n), fraction)


def test_exit_volatility_walks_each_stocks_own_history(tmp_path, sp500_bars):
    """Each signal's exit date is `exit_offset` rows later in its own stock's stored
    history, with that day's vol_20; an exit past the last stored day is NaT/NaN. Checked
    against pandas shifting each stock's rows, on three real stocks."""
    from datetime import date
    from types import SimpleNamespace

    import polars as pl

    from features.compute import refresh_features
    from stockml import store
    from tests.conftest import insert_prices
    from training.signal_trades import exit_volatility

    symbols = sp500_bars["symbol"].unique().sort().to_list()[:3]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2020, 1, 1)))
    con = store.connect(tmp_path / "x.duckdb")
    try:
        insert_prices(con, bars)
        refresh_features(con, progress=False)
        feats = store.query_pl(con, "SELECT symbol, date, vol_20 FROM features").to_pandas()
        feats = feats.sort_values(["symbol", "date"]).reset_index(drop=True)
        rng = np.random.default_rng(3)
        rows = np.sort(rng.choice(len(feats), 40, replace=False))
        offsets = rng.integers(1, 15, size=len(feats))
        offsets[rows[-1]] = 10_000  # past the end of its history
        samples = SimpleNamespace(
            symbols=feats["symbol"].to_numpy(),
            dates=feats["date"].to_numpy(),
            exit_offset=offsets,
        )
        con.execute("SELECT * FROM features")  # a result left unfinished, as the pipeline may
        got_date, got_vol = exit_volatility(con, samples, rows[::-1])
    finally:
        con.close()
    want_date, want_vol = [], []
    for i in rows[::-1]:
        history = feats[feats["symbol"] == feats["symbol"][i]].reset_index(drop=True)
        at = int(np.flatnonzero(history["date"] == feats["date"][i])[0]) + offsets[i]
        inside = at < len(history)
        want_date.append(history["date"][at] if inside else "NaT")
        want_vol.append(float(history["vol_20"][at]) if inside else np.nan)
    assert np.isnat(got_date[0]) and np.isnan(got_vol[0])
    assert [str(d)[:10] for d in got_date[1:]] == [str(d)[:10] for d in want_date[1:]]
    np.testing.assert_allclose(got_vol, want_vol, equal_nan=True)
