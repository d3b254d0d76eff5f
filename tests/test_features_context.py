"""Context features (features/context.py): equal to a slow pandas reference on real prices,
point in time (truncating the future changes nothing before it), and stored in the
`context_features` table that the `samples` view joins."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features.context import CONTEXT_COLUMNS, RANKED, RETURN_CLIP, context_frame

SECTORS = ["Energy", "Utilities", "Financials", None]


@pytest.fixture(scope="module")
def universe(sp500_bars: pl.DataFrame) -> pl.DataFrame:
    """30 real stocks over ~3 years (some starting late, so the universe changes size), a
    sector each (one without), and the ranked columns as noisy numbers with NaN gaps."""
    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:30]
    frame = sp500_bars.filter(
        pl.col("symbol").is_in(symbols)
        & (pl.col("date") >= pl.date(2015, 1, 1))
        & (pl.col("date") < pl.date(2018, 1, 1))
    )
    # Three symbols join the universe late, as listings do.
    frame = frame.filter(
        ~pl.col("symbol").is_in(symbols[:3]) | (pl.col("date") >= pl.date(2016, 3, 1))
    )
    frame = frame.select("symbol", "date", pl.col("adjclose").alias("close")).sort("symbol", "date")
    rng = np.random.default_rng(5)
    sector = {s: SECTORS[i % len(SECTORS)] for i, s in enumerate(symbols)}
    ranked = {}
    for name in RANKED:
        values = rng.normal(size=frame.height)
        values[rng.random(frame.height) < 0.05] = np.nan
        ranked[name] = values
    return frame.with_columns(
        pl.col("symbol").replace_strict(sector, return_dtype=pl.Utf8).alias("sector"),
        *[pl.Series(name, v) for name, v in ranked.items()],
    )


def pandas_reference(bars: pl.DataFrame) -> pd.DataFrame:
    """The same columns, written the slow, obvious way with pandas, day by day where a
    column is a per-day statistic."""
    df = bars.to_pandas().sort_values(["symbol", "date"]).reset_index(drop=True)
    df["sector"] = df["sector"].fillna("Unknown")
    by = df.groupby("symbol")["close"]
    for n in (1, 5, 20, 60):
        df[f"r{n}"] = df["close"] / by.shift(n) - 1
    sma50 = by.transform(lambda s: s.rolling(50).mean())
    df["above"] = np.where(sma50.isna(), np.nan, (df["close"] > sma50).astype(float))
    hi = by.transform(lambda s: s.rolling(20).max())
    lo = by.transform(lambda s: s.rolling(20).min())
    df["high"] = np.where(hi.isna(), np.nan, (df["close"] >= hi).astype(float))
    df["low"] = np.where(lo.isna(), np.nan, (df["close"] <= lo).astype(float))

    days = sorted(df["date"].unique())
    market = pd.DataFrame(index=days)
    market["ret"] = [
        df.loc[df["date"] == d, "r1"].clip(-RETURN_CLIP, RETURN_CLIP).mean() for d in days
    ]
    market["level"] = (1 + market["ret"].fillna(0.0)).cumprod()
    m = market["level"]
    for n in (5, 20, 60):
        market[f"mkt_ret_{n}"] = m / m.shift(n) - 1
    market["mkt_vol_20"] = market["ret"].rolling(20).std()
    market["mkt_dist_sma_50"] = m / m.rolling(50).mean() - 1
    market["mkt_dist_sma_200"] = m / m.rolling(200).mean() - 1
    for col, name in (
        ("above", "mkt_breadth_sma_50"),
        ("high", "mkt_high_20_share"),
        ("low", "mkt_low_20_share"),
    ):
        market[name] = [df.loc[df["date"] == d, col].mean() for d in days]
    df = df.join(market.drop(columns="level").rename(columns={"ret": "mkt_r1"}), on="date")

    df["mkt_rel_ret_20"] = df["r20"] - df["mkt_ret_20"]
    betas = []
    for _, g in df.groupby("symbol", sort=False):
        both = g["r1"].notna() & g["mkt_r1"].notna()
        r, big = g["r1"].where(both), g["mkt_r1"].where(both)
        cov = r.rolling(60).cov(big, ddof=0)
        var = big.rolling(60).var(ddof=0)
        betas.append((cov / var).where(var > 1e-14))
    df["beta_60"] = pd.concat(betas)

    grouped = df.groupby(["date", "sector"])
    for n in (5, 20, 60):
        median = grouped[f"r{n}"].transform("median")
        if n in (20, 60):
            df[f"sec_ret_{n}"] = median
        df[f"sec_rel_ret_{n}"] = df[f"r{n}"] - median
    for name in RANKED:
        ranks = df.groupby("date")[name].rank(method="average")
        count = df.groupby("date")[name].transform("count")
        pct = (ranks - 1) / (count - 1)
        df[f"xs_rank_{name}"] = np.where(count == 1, 0.5, pct)
        df.loc[df[name].isna(), f"xs_rank_{name}"] = np.nan
    return df[["symbol", "date", *CONTEXT_COLUMNS]]


def assert_columns_close(a, b, rtol: float, atol: float) -> None:
    """Every context column of frames `a` and `b` (polars or pandas): NaN in the same
    places, close elsewhere."""
    for name in CONTEXT_COLUMNS:
        x = a[name].to_numpy().astype(float)
        y = b[name].to_numpy().astype(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        assert np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True), name


def assert_frames_close(fast: pl.DataFrame, slow: pd.DataFrame) -> None:
    assert fast.height == len(slow)
    assert fast["symbol"].to_list() == slow["symbol"].tolist()
    assert_columns_close(fast, slow, rtol=1e-8, atol=1e-10)


def test_context_equals_a_slow_pandas_reference(universe):
    fast = context_frame(universe)
    assert fast.columns == ["symbol", "date", *CONTEXT_COLUMNS]
    assert_frames_close(fast, pandas_reference(universe))
    # Every column carries values once its windows are full (none is all-NULL).
    assert all(fast[c].drop_nulls().len() > 0.5 * fast.height for c in CONTEXT_COLUMNS)


@pytest.mark.parametrize("cut", ["2015-06-30", "2016-03-01", "2017-06-15"])
def test_truncating_the_future_changes_nothing_before(universe, cut):
    day = pl.lit(cut).str.to_date()
    whole = context_frame(universe).filter(pl.col("date") <= day)
    truncated = context_frame(universe.filter(pl.col("date") <= day))
    assert whole.height == truncated.height
    for name in CONTEXT_COLUMNS:
        a, b = whole[name].to_numpy(), truncated[name].to_numpy()
        assert np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True), name


def test_a_stored_market_symbol_is_the_index(universe):
    market = (
        universe.filter(pl.col("symbol") == universe["symbol"][0])
        .select("date", pl.col("close") * 3.0)
        .sort("date")
    )
    out = context_frame(universe, market).filter(pl.col("symbol") == universe["symbol"][-1])
    level = dict(zip(market["date"].to_list(), market["close"].to_list(), strict=True))
    dates = market["date"].to_list()
    i = 100
    expected = level[dates[i]] / level[dates[i - 20]] - 1
    got = out.filter(pl.col("date") == dates[i])["mkt_ret_20"][0]
    assert got == pytest.approx(expected, rel=1e-12)


def test_context_is_stored_and_joined_into_samples(tmp_path, sp500_bars):
    """A real store (12 real stocks, 2017-2021, with sectors): after features and context,
    the table, the `samples` view and `stockml sql` show the columns; an unchanged store
    is not recomputed, a changed price is."""
    from datetime import date

    from backtest.labels import refresh_labels, resolve_profile
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from stockml import store
    from tests.conftest import insert_prices

    db = tmp_path / "c.duckdb"
    symbols = sp500_bars["symbol"].unique().sort().to_list()[:12]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    con = store.connect(db)
    try:
        insert_prices(con, bars)
        store.upsert_symbols(con, [(s, s, SECTORS[i % 3]) for i, s in enumerate(symbols)])
        refresh_features(con, progress=False)
        refresh_labels(con, resolve_profile("swing"), progress=False)
        first = refresh_context(con, progress=False)
        assert not first["up_to_date"] and first["rows"] > 0
        assert refresh_context(con, progress=False)["up_to_date"]
        columns = [r[0] for r in con.execute("DESCRIBE samples").fetchall()]
        assert set(CONTEXT_COLUMNS) <= set(columns)
        n_prices = con.execute("SELECT count(*) FROM prices").fetchone()[0]
        assert con.execute("SELECT count(*) FROM context_features").fetchone()[0] == n_prices
        con.execute(
            "UPDATE prices SET adjclose = adjclose * 1.01 WHERE date = (SELECT max(date) "
            "FROM prices) AND symbol = (SELECT min(symbol) FROM prices)"
        )
        refresh_features(con, progress=False)
        assert not refresh_context(con, progress=False)["up_to_date"]
    finally:
        con.close()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stockml.cli",
            "sql",
            "--db",
            str(db),
            "SELECT count(*) AS n FROM samples WHERE mkt_ret_20 IS NOT NULL",
            "--out",
            str(tmp_path / "n.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert pl.read_csv(tmp_path / "n.csv")["n"][0] > 1000


@pytest.fixture()
def context_store(tmp_path, sp500_bars):
    """A real store: 12 real stocks 2017-2021 with sectors, features and swing labels."""
    from datetime import date

    from backtest.labels import refresh_labels, resolve_profile
    from features.compute import refresh_features
    from stockml import store
    from tests.conftest import insert_prices

    symbols = sp500_bars["symbol"].unique().sort().to_list()[:12]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    # Two symbols list late, so day chunks hold different numbers of stocks.
    bars = bars.filter(~pl.col("symbol").is_in(symbols[:2]) | (pl.col("date") >= date(2019, 6, 3)))
    con = store.connect(tmp_path / "chunks.duckdb")
    insert_prices(con, bars)
    store.upsert_symbols(con, [(s, s, SECTORS[i % 3]) for i, s in enumerate(symbols)])
    refresh_features(con, progress=False)
    refresh_labels(con, resolve_profile("swing"), progress=False)
    yield con
    con.close()


def stored_context(con) -> pl.DataFrame:
    from stockml import store

    return store.query_pl(con, "SELECT * FROM context_features ORDER BY symbol, date")


def test_chunked_refresh_equals_the_in_memory_frame(context_store):
    """Symbol chunks of ~3,000 rows and day chunks of as many (several of each), through
    the scratch tables, store what `context_frame` computes on the whole universe at once;
    no scratch table is left behind."""
    from features.context_refresh import read_universe, refresh_context
    from stockml import store

    con = context_store
    summary = refresh_context(con, progress=False, chunk_rows=3_000)
    assert summary["chunks"] >= 3 and summary["day_chunks"] >= 3, summary
    chunked = stored_context(con)
    whole = store.feature_rows(context_frame(*read_universe(con)))
    assert chunked.height == whole.height == summary["rows"]
    assert chunked["symbol"].to_list() == whole["symbol"].to_list()
    assert chunked["date"].to_list() == whole["date"].to_list()
    assert_columns_close(chunked, whole, rtol=1e-6, atol=1e-9)
    assert not np.all(np.isnan(chunked["beta_60"].to_numpy().astype(float)))
    left = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '\\_context%' "
        "ESCAPE '\\'"
    ).fetchall()
    assert left == []


def test_an_interrupted_refresh_keeps_the_old_table(context_store, monkeypatch):
    """A failure in the last stage leaves the stored context and its version as they were;
    the next refresh starts over and completes."""
    import features.context_refresh as refresh

    con = context_store
    refresh.refresh_context(con, progress=False, chunk_rows=3_000)
    before = stored_context(con)
    version = con.execute("SELECT value FROM settings WHERE key = 'context_version'").fetchone()
    con.execute(
        "UPDATE prices SET adjclose = adjclose * 1.02 WHERE date = (SELECT max(date) "
        "FROM prices) AND symbol = (SELECT min(symbol) FROM prices)"
    )
    calls = {"n": 0}
    real_finish = refresh.finish

    def failing_finish(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_finish(*args)

    monkeypatch.setattr(refresh, "finish", failing_finish)
    with pytest.raises(KeyboardInterrupt):
        refresh.refresh_context(con, progress=False, chunk_rows=3_000)
    assert stored_context(con).equals(before)
    now = con.execute("SELECT value FROM settings WHERE key = 'context_version'").fetchone()
    assert now == version
    monkeypatch.setattr(refresh, "finish", real_finish)
    again = refresh.refresh_context(con, progress=False, chunk_rows=3_000)
    assert not again["up_to_date"] and again["rows"] == before.height
    assert not stored_context(con).equals(before)
