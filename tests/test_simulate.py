"""The seeded market simulator behind the offline demo: deterministic and market-like."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from ingest.simulate import simulate_market
from ingest.universe import listing_rows

AS_OF = date(2024, 6, 28)


@pytest.fixture(scope="module")
def market():
    return simulate_market(listing_rows(), AS_OF, seed=11)


def log_returns(series) -> np.ndarray:
    return np.diff(np.log(series.adjclose))


def test_same_seed_same_market(market):
    """Two runs with one seed serve identical bars."""
    again = simulate_market(listing_rows()[:5], AS_OF, seed=11)
    for symbol, series in again.items():
        assert np.array_equal(series.adjclose, market[symbol].adjclose)
        assert np.array_equal(series.volume, market[symbol].volume)


def test_bars_are_valid_and_end_at_as_of(market):
    """Every bar is a possible bar (low <= open, close <= high, prices > 0) up to the as-of day."""
    for series in market.values():
        assert series.dates[-1] <= np.datetime64(AS_OF)
        assert (series.low > 0).all()
        assert (series.low <= np.minimum(series.open, series.close)).all()
        assert (series.high >= np.maximum(series.open, series.close)).all()


def test_returns_are_fat_tailed_and_clustered(market):
    """Daily returns have excess kurtosis and volatility clustering, like real stocks."""
    kurtosis, clustering = [], []
    for series in market.values():
        r = log_returns(series)
        z = (r - r.mean()) / r.std()
        kurtosis.append((z**4).mean() - 3)
        sq = z**2
        clustering.append(np.corrcoef(sq[1:], sq[:-1])[0, 1])
    assert np.median(kurtosis) > 1.0
    assert np.median(clustering) > 0.05


def test_stocks_of_one_sector_move_together(market):
    """Return correlation within a sector exceeds correlation across sectors."""
    sectors = {s: sector for s, _, sector in listing_rows()}
    symbols = sorted(market)
    returns = np.array([log_returns(market[s])[-750:] for s in symbols])
    corr = np.corrcoef(returns)
    same, other = [], []
    for i in range(len(symbols)):
        for j in range(i + 1, len(symbols)):
            (same if sectors[symbols[i]] == sectors[symbols[j]] else other).append(corr[i, j])
    assert np.mean(same) > np.mean(other) + 0.05


def test_splits_and_dividends_are_adjusted_as_yahoo_serves_them(market):
    """Some stocks split and many pay dividends; served history shows no split crash, and
    adjclose sits below close before a dividend."""
    splits = [(s, d) for s, series in market.items() for d in series.splits]
    payers = [s for s, series in market.items() if series.dividends]
    assert splits and len(payers) > len(market) // 3
    for symbol, day in splits:
        series = market[symbol]
        i = int(np.searchsorted(series.dates, day))
        assert abs(series.close[i] / series.close[i - 1] - 1) < 0.4
    series = market[payers[0]]
    first_div = min(series.dividends)
    before = series.dates < first_div
    assert (series.adjclose[before] < series.close[before]).all()
