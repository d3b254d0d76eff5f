"""The triple-barrier label kernel against a slow reference; the labels table; stockml sql."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.labels import PROFILES, Profile, compute_labels, refresh_labels, resolve_profile
from backtest.nb import label_triple_barrier_nb
from features.compute import adjust_bars
from stockml import store
from stockml.errors import InputError
from tests.conftest import insert_prices

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "example_queries.sql"


def slow_labels(o, h, lo, c, hold, tp, sl):
    """The rule written as plainly as possible, one day at a time."""
    n = len(c)
    rows = []
    for t in range(n):
        if t + hold >= n:
            rows.append((np.nan,) * 5)
            continue
        entry = c[t]
        result = None
        for k in range(1, hold + 1):
            j = t + k
            window = slice(t + 1, j + 1)
            mfe = h[window].max() / entry - 1
            mae = lo[window].min() / entry - 1
            stop = entry * (1 + sl)
            if lo[j] <= stop:  # both barriers on one day count as a loss
                result = (-1.0, k, min(o[j], stop) / entry - 1, max(mfe, 0.0), min(mae, 0.0))
                break
            if h[j] >= entry * (1 + tp):
                result = (1.0, k, tp, max(mfe, 0.0), min(mae, 0.0))
                break
        if result is None:
            window = slice(t + 1, t + hold + 1)
            result = (
                0.0,
                hold,
                c[t + hold] / entry - 1,
                max(h[window].max() / entry - 1, 0.0),
                min(lo[window].min() / entry - 1, 0.0),
            )
        rows.append(result)
    return np.array(rows, dtype=float).reshape(n, 5).T


def run_kernel(o, h, lo, c, hold, tp, sl):
    offsets = np.array([0, len(c)], dtype=np.int64)
    return np.array(label_triple_barrier_nb(o, h, lo, c, offsets, hold, tp, sl))


@pytest.mark.parametrize("symbol", ["AAPL", "JPM", "XOM", "VTRS"])
@pytest.mark.parametrize("profile", ["swing", "options"])
def test_kernel_equals_slow_reference_on_real_stocks(sp500_bars, symbol, profile):
    """Every label, exit day, exit return and excursion equals the slow reference."""
    p = PROFILES[profile]
    adjusted = adjust_bars(sp500_bars.filter(pl.col("symbol") == symbol).sort("date"))
    o, h, lo, c = (adjusted[k].to_numpy() for k in ("open", "high", "low", "close"))
    ours = run_kernel(o, h, lo, c, p.hold_days, p.take_profit, p.stop_loss)
    expected = slow_labels(o, h, lo, c, p.hold_days, p.take_profit, p.stop_loss)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    assert set(np.unique(ours[0][~np.isnan(ours[0])])) <= {-1.0, 0.0, 1.0}
    assert np.isnan(ours[0][-p.hold_days :]).all() and not np.isnan(ours[0][: -p.hold_days]).any()


@settings(max_examples=200, deadline=None)
@given(
    closes=st.lists(
        st.sampled_from([9.0, 9.5, 10.0, 10.0, 10.5, 11.0, 12.0]), min_size=1, max_size=40
    ),
    hold=st.integers(1, 6),
    wick=st.floats(0.0, 0.15),
)
def test_kernel_equals_reference_on_generated_series(closes, hold, wick):
    """Flat stretches, gaps, series shorter than H and days touching both barriers all
    follow the written rule."""
    c = np.array(closes)
    o = np.r_[c[0], c[:-1]]  # open at the previous close: gaps come from the sampled closes
    h = np.maximum(o, c) * (1 + wick)
    lo = np.minimum(o, c) * (1 - wick)
    ours = run_kernel(o, h, lo, c, hold, 0.08, -0.04)
    np.testing.assert_allclose(ours, slow_labels(o, h, lo, c, hold, 0.08, -0.04), rtol=1e-12)


def test_a_day_touching_both_barriers_is_a_loss():
    """A bar that reaches the target and the stop is counted as a loss."""
    c = np.array([100.0, 100.0, 100.0])
    o = np.array([100.0, 100.0, 100.0])
    h = np.array([100.0, 111.0, 100.0])
    lo = np.array([100.0, 94.0, 100.0])
    label, offset, ret, _, _ = run_kernel(o, h, lo, c, 2, 0.10, -0.05)
    assert (label[0], offset[0], ret[0]) == (-1.0, 1.0, pytest.approx(-0.05))


def test_symbols_are_labelled_independently():
    """A symbol's last H days stay unlabelled even when another symbol follows it."""
    c = np.linspace(10, 20, 30)
    offsets = np.array([0, 15, 30], dtype=np.int64)
    label = label_triple_barrier_nb(c, c * 1.01, c * 0.99, c, offsets, 5, 0.1, -0.05)[0]
    assert np.isnan(label[10:15]).all() and np.isnan(label[25:30]).all()
    assert not np.isnan(label[:10]).any()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "unknown profile"),
        (("swing", 0), "--hold-days"),
        (("swing", None, -0.1), "--take-profit"),
        (("swing", None, None, 0.05), "--stop-loss"),
    ],
)
def test_bad_profiles_are_refused(args, message):
    """Unknown profiles and impossible barriers are one-line input errors."""
    with pytest.raises(InputError, match=message):
        resolve_profile(*args)


def test_default_profile_is_a_profile():
    """The commands' default names a profile, and the printed barriers come from it."""
    from stockml.defaults import DEFAULT_PROFILE

    assert PROFILES[DEFAULT_PROFILE].name == DEFAULT_PROFILE
    assert Profile("x", 7, 0.08, -0.04).describe() == "7 days, +8% / -4%"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory, sp500_bars):
    """A real store with 30 real stocks, features and swing labels."""
    from features.compute import refresh_features
    from ingest.universe import listing_rows

    db = tmp_path_factory.mktemp("samples") / "s.duckdb"
    symbols = sp500_bars["symbol"].unique().sort().to_list()[:30]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2015, 1, 1)))
    con = store.connect(db)
    insert_prices(con, bars)
    store.upsert_symbols(con, listing_rows())
    import csv

    with (ROOT.parent / "shared" / "data" / "sp500_constituents.csv").open() as handle:
        store.upsert_symbols(
            con, [(r["symbol"], r["name"], r["sector"]) for r in csv.DictReader(handle)]
        )
    refresh_features(con, progress=False)
    first = refresh_labels(con, PROFILES["swing"], progress=False)
    again = refresh_labels(con, PROFILES["swing"], progress=False)
    stored = store.query_pl(
        con, "SELECT * FROM labels WHERE profile = 'swing' ORDER BY symbol, date"
    )
    expected = compute_labels(store.read_prices(con), PROFILES["swing"])
    con.close()
    return {"db": db, "first": first, "again": again, "stored": stored, "expected": expected}


def test_labels_table_matches_a_fresh_computation_and_refresh_is_incremental(sample_store):
    """Stored labels equal a direct computation; a second refresh recomputes nothing."""
    assert sample_store["first"]["symbols"] == 30 and sample_store["again"]["symbols"] == 0
    assert sample_store["stored"].equals(sample_store["expected"])


def run_sql(db: Path, query: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", "sql", query, "--db", str(db), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def example_queries() -> list[str]:
    text = EXAMPLES.read_text()
    queries = []
    for chunk in text.split(";"):
        lines = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
        if "".join(lines).strip():
            queries.append("\n".join(lines).strip())
    return queries


def test_readme_example_queries_answer(sample_store):
    """Each of the five example queries runs through `stockml sql` and returns rows."""
    queries = example_queries()
    assert len(queries) == 5
    for query in queries:
        proc = run_sql(sample_store["db"], query)
        assert proc.returncode == 0, proc.stderr
        assert "│" in proc.stderr or "|" in proc.stderr or proc.stdout, proc.stderr


def test_sql_writes_csv_and_parquet_and_refuses_writes(sample_store, tmp_path):
    """--out writes every row; the store is opened read-only; bad SQL is one line."""
    query = "SELECT symbol, count(*) AS n FROM labels GROUP BY symbol ORDER BY symbol"
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"x{suffix}"
        assert run_sql(sample_store["db"], query, "--out", str(out)).returncode == 0
        frame = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
        assert frame.height == 30
    refused = run_sql(sample_store["db"], "DELETE FROM labels")
    assert refused.returncode == 2 and "read-only" in refused.stderr.lower()
    bad = run_sql(sample_store["db"], "SELEC 1")
    assert bad.returncode == 2 and bad.stderr.startswith("stockml: error: SQL error")
    assert "Traceback" not in bad.stderr


def test_dates_cover_the_store(sample_store):
    """Labels exist for every stored day; only the last H of each symbol are NULL."""
    stored = sample_store["stored"]
    nulls = (
        stored.filter(pl.col("label").is_null()).group_by("symbol").len()["len"].unique().to_list()
    )
    assert nulls == [PROFILES["swing"].hold_days]
    assert stored["date"].min() >= date(2015, 1, 1) - timedelta(days=1)
