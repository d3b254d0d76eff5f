"""Black-Scholes prices and option trade returns: checked against a hand-worked value,
put-call parity, expiry and volatility limits."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from training.options import annualised_vol_from_feature, black_scholes, option_trade_returns


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_call_and_put_match_a_hand_worked_example():
    """S=100, K=100, T=30/365, sigma=0.2, r=0.04:
    d1 = (ln 1 + (0.04 + 0.02) * 30/365) / (0.2 * sqrt(30/365)) = 0.0860073,
    d2 = d1 - 0.2 * sqrt(30/365) = 0.0286691, N(d1) = 0.534270, N(d2) = 0.511436,
    call = 100 N(d1) - 100 e^(-0.04*30/365) N(d2) = 2.45126, put = 2.12303."""
    s, k, t, v, r = 100.0, 100.0, 30 / 365, 0.2, 0.04
    d1 = (math.log(s / k) + (r + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    call = s * norm_cdf(d1) - k * math.exp(-r * t) * norm_cdf(d2)
    put = k * math.exp(-r * t) * norm_cdf(-d2) - s * norm_cdf(-d1)
    assert call == pytest.approx(2.45126, abs=1e-5)
    assert put == pytest.approx(2.12303, abs=1e-5)
    got = black_scholes(s, k, t, v, r, side=np.array([1, -1]))
    np.testing.assert_allclose(got, [call, put], rtol=1e-12)


def test_put_call_parity_holds_with_a_dividend_yield():
    """C - P = S e^(-qT) - K e^(-rT) on a grid of strikes, times, vols and rates."""
    rng = np.random.default_rng(3)
    s = rng.uniform(20, 200, 500)
    k = s * rng.uniform(0.7, 1.3, 500)
    t = rng.uniform(1 / 365, 2, 500)
    v = rng.uniform(0.05, 1.0, 500)
    r = rng.uniform(0.0, 0.08, 500)
    q = rng.uniform(0.0, 0.04, 500)
    call = black_scholes(s, k, t, v, r, q, side=1)
    put = black_scholes(s, k, t, v, r, q, side=-1)
    np.testing.assert_allclose(call - put, s * np.exp(-q * t) - k * np.exp(-r * t), atol=1e-9)


def test_expired_options_are_worth_their_intrinsic_value():
    """At T <= 0 a call is max(S - K, 0) and a put max(K - S, 0), whatever the vol."""
    spot = np.array([90.0, 100.0, 110.0])
    for years in (0.0, -0.1):
        np.testing.assert_array_equal(black_scholes(spot, 100, years, 0.3, side=1), [0, 0, 10])
        np.testing.assert_array_equal(black_scholes(spot, 100, years, 0.0, side=-1), [10, 0, 0])


def test_zero_vol_is_the_discounted_forward_intrinsic_and_the_small_vol_limit():
    """sigma = 0: call = max(S - K e^(-rT), 0); a tiny sigma prices the same."""
    t, r = 0.5, 0.04
    zero = black_scholes(100, 100, t, 0.0, r, side=np.array([1, -1]))
    np.testing.assert_allclose(zero, [100 - 100 * math.exp(-r * t), 0.0])
    np.testing.assert_allclose(black_scholes(100, 100, t, 1e-9, r, side=[1, -1]), zero, atol=1e-9)


def test_prices_rise_with_volatility():
    """Vega > 0: both call and put prices increase strictly with sigma."""
    vols = np.linspace(0.05, 1.5, 30)
    for side in (1, -1):
        prices = black_scholes(100, 95, 0.25, vols, 0.03, side=side)
        assert (np.diff(prices) > 0).all()


@pytest.mark.parametrize(
    ("spot", "strike", "vol", "side"),
    [
        (100, 100, np.nan, 1),
        (100, 100, -0.1, 1),
        (0, 100, 0.2, 1),
        (100, np.nan, 0.2, -1),
        (100, 100, 0.2, 0),
    ],
)
def test_unpriceable_inputs_give_nan(spot, strike, vol, side):
    """A missing or impossible input, or no trade (side 0), is NaN rather than a guess."""
    assert np.isnan(black_scholes(spot, strike, 0.1, vol, 0.04, side=side))


def test_a_side_other_than_call_put_or_none_is_refused():
    """side 2 is a programming error."""
    with pytest.raises(ValueError, match="side"):
        black_scholes(100, 100, 0.1, 0.2, side=2)


def test_option_trade_return_reprices_with_the_time_left():
    """A call bought at S=100, K=100, 30 calendar days, sigma 0.2, and sold 10 trading days
    later at S=104, sigma 0.25, has 30 - 10*365/252 = 15.516 calendar days left."""
    got = option_trade_returns(
        np.array([100.0]), np.array([104.0]), 0.2, 0.25, np.array([10]), 1, 30, 0.04
    )
    bought = black_scholes(100, 100, 30 / 365, 0.2, 0.04, side=1)
    sold = black_scholes(104, 100, (30 - 10 * 365 / 252) / 365, 0.25, 0.04, side=1)
    np.testing.assert_allclose(got, [sold / bought - 1])
    assert got[0] > 0.5  # a 4% move levers into a large option gain


def test_option_trades_that_outlive_the_option_are_valued_at_intrinsic():
    """A put held 30 trading days on a 30-day option: worth K - S1 at the exit."""
    got = option_trade_returns(np.array([100.0]), np.array([90.0]), 0.3, 0.3, [30], -1, 30)
    bought = black_scholes(100, 100, 30 / 365, 0.3, 0.04, side=-1)
    np.testing.assert_allclose(got, [10.0 / bought - 1])
    worthless = option_trade_returns(np.array([100.0]), np.array([101.0]), 0.3, 0.3, [30], -1)
    np.testing.assert_array_equal(worthless, [-1.0])


def test_option_trade_returns_are_nan_without_a_trade_or_a_vol():
    """side 0 (HOLD) and a NaN volatility give NaN, a valid row beside them does not."""
    got = option_trade_returns(
        np.full(3, 100.0),
        np.full(3, 101.0),
        np.array([0.2, 0.2, np.nan]),
        0.2,
        np.array([5, 5, 5]),
        np.array([1, 0, 1]),
    )
    assert np.isfinite(got[0]) and np.isnan(got[1:]).all()


def test_non_positive_expiry_is_refused():
    """An option must have time to live when bought."""
    with pytest.raises(ValueError, match="expiry_days"):
        option_trade_returns(np.array([100.0]), np.array([100.0]), 0.2, 0.2, [1], 1, 0)


def test_vol_20_is_daily_and_annualises_with_sqrt_252():
    """features/catalog.csv says vol_20 is the population std of daily log returns over 20
    days; a path with daily log returns +-1% has vol_20 = 0.01, i.e. 0.01*sqrt(252) a year."""
    with (Path(__file__).parents[1] / "features" / "catalog.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["name"] == "vol_20")
    assert row["formula"] == "population std of daily log returns over 20 days"
    assert "STDDEV(np.r_[np.nan, np.diff(np.log(c))], 20, 1)" in row["talib_reference"]
    daily = np.tile([0.01, -0.01], 10)
    vol_20 = np.std(daily)  # population std, as the catalog's nbdev=1 STDDEV
    assert vol_20 == pytest.approx(0.01)
    np.testing.assert_allclose(
        annualised_vol_from_feature([vol_20, np.nan]), [0.01 * math.sqrt(252), np.nan]
    )
