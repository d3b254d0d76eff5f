"""Formula features against slow references; no look-ahead; no cross-symbol leakage;
the features table refreshed incrementally; features never import backtest."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalog import COLUMNS, FEATURES
from features.compute import adjust_bars, compute_features, compute_matrix, refresh_features
from stockml import store

ROOT = Path(__file__).resolve().parent.parent
FORMULA = [f for f in FEATURES if f.reference == "formula"]


def bars_frame(closes: np.ndarray, symbol: str = "X", seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(closes)
    spread = 1 + np.abs(rng.normal(0, 0.01, (2, n)))
    opens = closes * (1 + rng.normal(0, 0.005, n))
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": [date(2000, 1, 3) + timedelta(days=i) for i in range(n)],
            "open": opens,
            "high": np.maximum(opens, closes) * spread[0],
            "low": np.minimum(opens, closes) / spread[1],
            "close": closes,
            "adjclose": closes,
            "volume": rng.integers(1_000, 1_000_000, n),
        }
    )


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.015))


# ---- slow, obviously correct references for the nine formula features -------------


def slow_reference(name: str, o, h, lo, c) -> np.ndarray:
    n = len(c)
    out = np.full(n, np.nan)
    r = np.r_[np.nan, np.diff(np.log(c))]
    window = int(name.rsplit("_", 1)[1])
    for t in range(n):
        if name.startswith(("skew", "kurt")):
            if t < window:
                continue
            x = pl.Series(r[t - window + 1 : t + 1])
            out[t] = x.skew(bias=False) if name.startswith("skew") else x.kurtosis(bias=False)
        elif name.startswith("pct_rank"):
            if t < window - 1:
                continue
            previous = c[t - window + 1 : t]
            out[t] = np.mean(previous < c[t])
        elif name.startswith("max_drawdown"):
            if t < window - 1:
                continue
            seg = c[t - window + 1 : t + 1]
            out[t] = np.min(seg / np.maximum.accumulate(seg) - 1)
        elif name.startswith("yang_zhang"):
            if t < window:
                continue
            s = slice(t - window + 1, t + 1)
            overnight = np.log(o[s] / c[t - window : t])
            open_close = np.log(c[s] / o[s])
            rs = np.log(h[s] / c[s]) * np.log(h[s] / o[s]) + np.log(lo[s] / c[s]) * np.log(
                lo[s] / o[s]
            )
            k = 0.34 / (1.34 + (window + 1) / (window - 1))
            out[t] = np.sqrt(
                overnight.var(ddof=1) + k * open_close.var(ddof=1) + (1 - k) * rs.mean()
            )
    return out


@pytest.mark.parametrize("feature", FORMULA, ids=lambda f: f.name)
def test_formula_feature_equals_slow_reference(feature):
    """Each formula-only feature equals a plain loop over its definition."""
    frame = adjust_bars(bars_frame(random_walk(400, 3)))
    matrix = compute_matrix(frame)
    row = COLUMNS.index(feature.name)
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    expected = slow_reference(feature.name, o, h, lo, c)
    ours = matrix[row]
    assert np.array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=1, max_value=420),
    cut=st.integers(min_value=0, max_value=419),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_truncating_the_future_changes_nothing_before(n, cut, seed):
    """No look-ahead: features on or before day t are the same whether or not the days
    after t exist."""
    cut = min(cut, n - 1)
    frame = adjust_bars(bars_frame(random_walk(n, seed), seed=seed))
    full = compute_matrix(frame)
    head = compute_matrix(frame.head(cut + 1))
    np.testing.assert_array_equal(full[:, : cut + 1], head)


def test_symbols_do_not_leak_into_each_other():
    """A symbol's features are the same computed alone or between two other symbols."""
    a = bars_frame(random_walk(300, 1), "AAA", 1)
    b = bars_frame(random_walk(300, 2), "BBB", 2)
    c = bars_frame(random_walk(300, 3), "CCC", 3)
    together = compute_features(pl.concat([a, b, c]))
    alone = compute_features(b)
    middle = together.filter(pl.col("symbol") == "BBB")
    assert middle.equals(alone)


def test_refresh_recomputes_only_changed_symbols(db_path):
    """A second refresh computes nothing; changing one symbol's prices recomputes only it,
    and the table then equals a fresh computation."""
    con = store.connect(db_path)
    try:
        frames = [bars_frame(random_walk(300, s), f"S{s}", s) for s in range(3)]
        for f in frames:
            con.register("_f", f.to_arrow())
            con.execute("INSERT INTO prices SELECT * FROM _f")
            con.unregister("_f")
        first = refresh_features(con, progress=False)
        again = refresh_features(con, progress=False)
        con.execute(
            "UPDATE prices SET close = close * 1.01, adjclose = adjclose * 1.01 "
            "WHERE symbol = 'S1' AND date > '2000-06-01'"
        )
        third = refresh_features(con, progress=False)
        stored = store.query_pl(con, "SELECT * FROM features ORDER BY symbol, date")
        expected = store.feature_rows(compute_features(store.read_prices(con)))
    finally:
        con.close()
    assert (first["symbols"], again["symbols"], third["symbols"]) == (3, 0, 1)
    assert stored.columns == ["symbol", "date", *COLUMNS]
    assert stored.equals(expected)


def test_features_never_import_backtest():
    """Labels look into the future by design; nothing in features/ may import backtest."""
    for path in (ROOT / "features").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "backtest" for n in names), path
