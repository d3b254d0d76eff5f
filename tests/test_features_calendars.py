"""Context on each symbol's own calendar (issue 25, faults 1 and 2): a symbol trading every
day (BTC-USD) adds no market day for the stocks, and a Tokyo stock's day t sees only the New
York days that closed before Tokyo did. Real stocks through the real ingester and store, and
the pure frame on real prices."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from features.context import CONTEXT_COLUMNS, context_frame
from ingest.client import FetchPolicy
from ingest.run import IngestRequest, run_ingest
from ingest.simulate import Series
from stockml import store
from stockml.calendars import calendar_of, with_close_instants
from tests.ingest_support import load_market, serving

STOCKS = 20
START, END = date(2017, 1, 3), date(2019, 12, 31)
CRYPTO = {"exchangeTimezoneName": "UTC", "instrumentType": "CRYPTOCURRENCY"}


def _every_day_series(first: date, last: date, seed: int = 11) -> Series:
    """A BTC-like series: a bar on every calendar day, 4 % daily volatility."""
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    rng = np.random.default_rng(seed)
    close = 9000 * np.exp(np.cumsum(rng.normal(0, 0.04, len(days))))
    return Series(
        days, close, close * 1.02, close * 0.98, close, close.copy(), np.full(len(days), 10**9)
    )


@pytest.fixture(scope="module")
def stores(sp500_parquet, tmp_path_factory):
    """Two real stores of the same 20 stocks (features and context refreshed), one also
    holding BTC-USD served with Yahoo's crypto meta."""
    from features.compute import refresh_features
    from features.context_refresh import refresh_context

    market = load_market(sp500_parquet)
    symbols = sorted(market.series)[:STOCKS]
    market.series = {s: market.series[s] for s in symbols}
    market.series["BTC-USD"] = _every_day_series(date(2015, 1, 1), END)
    folder = tmp_path_factory.mktemp("calendars")
    paths = {}
    with serving(market, meta={"BTC-USD": CRYPTO}) as srv:
        policy = FetchPolicy(base_url=srv.base_url, rate=500.0, concurrency=8, retries=1)
        for name, wanted in (("with_btc", [*symbols, "BTC-USD"]), ("stocks", symbols)):
            db = folder / f"{name}.duckdb"
            run_ingest(IngestRequest(wanted, START, END, db, policy, progress=False))
            con = store.connect(db)
            try:
                refresh_features(con, progress=False)
                refresh_context(con, progress=False)
            finally:
                con.close()
            paths[name] = db
    return symbols, paths


def _context(db, where: str = "") -> pl.DataFrame:
    con = store.connect(db, read_only=True)
    try:
        sql = f"SELECT * FROM context_features {where} ORDER BY symbol, date"
        return store.query_pl(con, sql)
    finally:
        con.close()


def test_a_symbol_trading_every_day_changes_no_stocks_context(stores):
    """With BTC-USD stored (weekend rows, its own calendar), every stock's context column is
    what it is without it, on every day; a Monday's mkt_ret_5 is the index's move over the
    stocks' own last five sessions."""
    symbols, paths = stores
    stocks_only = _context(paths["stocks"])
    with_btc = _context(paths["with_btc"], "WHERE symbol <> 'BTC-USD'")
    assert with_btc.height == stocks_only.height
    assert with_btc.equals(stocks_only)
    calendar = _context(paths["with_btc"], "WHERE symbol = 'BTC-USD'")
    assert calendar.filter(pl.col("date").dt.weekday() >= 6).height > 200  # its weekends

    con = store.connect(paths["stocks"], read_only=True)
    try:
        closes = store.query_pl(
            con, "SELECT symbol, date, adjclose FROM prices ORDER BY symbol, date"
        )
    finally:
        con.close()
    returns = closes.with_columns(
        (pl.col("adjclose") / pl.col("adjclose").shift(1) - 1).over("symbol").alias("r")
    )
    index = (
        returns.group_by("date")
        .agg(pl.col("r").clip(-0.5, 0.5).mean())
        .sort("date")
        .with_columns((1 + pl.col("r").fill_null(0.0)).cum_prod().alias("m"))
    )
    monday = date(2019, 3, 11)
    m = index["m"].to_list()
    i = index["date"].to_list().index(monday)
    expected = m[i] / m[i - 5] - 1
    first_stock = with_btc.filter((pl.col("symbol") == symbols[0]) & (pl.col("date") == monday))
    assert first_stock["mkt_ret_5"][0] == pytest.approx(expected, rel=1e-5)


def test_one_calendar_for_all_would_bend_the_stocks_context(stores):
    """The control: the same store read as if BTC-USD traded on New York's calendar moves
    the stocks' Monday mkt_ret_5 and their beta on most days (the bug as reported)."""
    from features.context_refresh import read_bars

    symbols, paths = stores
    con = store.connect(paths["with_btc"], read_only=True)
    try:
        bars = read_bars(con)
    finally:
        con.close()
    right = context_frame(bars)
    wrong = context_frame(
        with_close_instants(bars.with_columns(pl.lit("America/New_York").alias("calendar")))
    )
    stock = pl.col("symbol") == symbols[0]
    keys = ["symbol", "date"]
    both = right.filter(stock).join(wrong.filter(stock), on=keys, suffix="_wrong")
    monday = both.filter(pl.col("date") == date(2019, 3, 11))
    assert monday["mkt_ret_5"][0] != pytest.approx(monday["mkt_ret_5_wrong"][0], rel=1e-3)
    beta = both.drop_nulls(["beta_60", "beta_60_wrong"])
    moved = (beta["beta_60"] - beta["beta_60_wrong"]).abs() > 1e-6
    assert moved.mean() > 0.5


def _tokyo_universe(sp500_bars: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """20 real New York stocks and a Tokyo stock that follows New York's previous session
    (its day-d return is the NY index's return of the NY day before d, plus noise): what a
    Tokyo listing does, and what made the day-t context look ahead."""
    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:STOCKS]
    ny = (
        sp500_bars.filter(pl.col("symbol").is_in(symbols) & pl.col("date").is_between(START, END))
        .select("symbol", "date", pl.col("adjclose").alias("close"))
        .with_columns(
            pl.lit("Energy").alias("sector"), pl.lit("America/New_York").alias("calendar")
        )
    )
    index = (
        ny.with_columns((pl.col("close") / pl.col("close").shift(1) - 1).over("symbol").alias("r"))
        .group_by("date")
        .agg(pl.col("r").mean())
        .sort("date")
    )
    rng = np.random.default_rng(4)
    follow = np.r_[0.0, index["r"].fill_null(0.0).to_numpy()[:-1]]  # NY's previous session
    tokyo_close = 3000 * np.exp(np.cumsum(follow + rng.normal(0, 0.004, index.height)))
    tokyo = pl.DataFrame(
        {
            "symbol": "7203.T",
            "date": index["date"],
            "close": tokyo_close,
            "sector": "Energy",
            "calendar": "Asia/Tokyo",
        }
    )
    bars = pl.concat([ny, tokyo]).with_columns(
        *[pl.lit(None, dtype=pl.Float64).alias(n) for n in _ranked()]
    )
    return with_close_instants(bars).sort("symbol", "date"), "7203.T"


def _ranked() -> tuple[str, ...]:
    from features.context import RANKED

    return RANKED


@pytest.mark.parametrize("cut", [date(2018, 6, 13), date(2019, 2, 4)])
def test_a_tokyo_day_uses_no_new_york_session_that_closed_after_it(sp500_bars, cut):
    """Point in time across zones: dropping every New York bar from day t on changes no
    context column of the Tokyo stock on day t or before (Tokyo closes 14 hours before New
    York does on the same date)."""
    bars, tokyo = _tokyo_universe(sp500_bars)
    whole = context_frame(bars).filter(pl.col("symbol") == tokyo)
    cut_ny = bars.filter((pl.col("calendar") != "America/New_York") | (pl.col("date") < cut))
    truncated = context_frame(cut_ny).filter(pl.col("symbol") == tokyo)
    before = pl.col("date") <= cut
    a, b = whole.filter(before), truncated.filter(before)
    for name in CONTEXT_COLUMNS:
        x, y = a[name].to_numpy().astype(float), b[name].to_numpy().astype(float)
        assert np.allclose(x, y, rtol=1e-12, atol=1e-12, equal_nan=True), name


def test_a_tokyo_stocks_context_does_not_predict_its_next_day_from_new_yorks_same_day(
    sp500_bars,
):
    """The reported symptom: its day-t mkt_ret_5 against its return from t to t+1 had a
    correlation of +0.45 when day t meant New York's close; on Tokyo's own clock it is ~0
    (a US stock's is ~0 too)."""
    bars, tokyo = _tokyo_universe(sp500_bars)

    def next_day_correlation(frame: pl.DataFrame) -> float:
        context = context_frame(frame).filter(pl.col("symbol") == tokyo)
        own = frame.filter(pl.col("symbol") == tokyo).select("date", "close")
        joined = context.join(own, on="date").with_columns(
            (pl.col("close").shift(-1) / pl.col("close") - 1).alias("next")
        )
        joined = joined.drop_nulls(["mkt_ret_5", "next"])
        return float(np.corrcoef(joined["mkt_ret_5"], joined["next"])[0, 1])

    as_reported = bars.with_columns(
        pl.when(pl.col("symbol") == tokyo)
        .then(pl.lit("America/New_York"))
        .otherwise(pl.col("calendar"))
        .alias("calendar")
    )
    assert next_day_correlation(as_reported) > 0.3  # the look-ahead, reproduced
    assert abs(next_day_correlation(bars)) < 0.1


def test_calendars_follow_yahoos_meta():
    """Exchange-traded kinds share their exchange's calendar; crypto, currencies and
    futures have their own."""
    assert calendar_of("America/New_York", "EQUITY") == "America/New_York"
    assert calendar_of("America/New_York", "INDEX") == "America/New_York"
    assert calendar_of(None, None) == "America/New_York"
    assert calendar_of("UTC", "CRYPTOCURRENCY") == "cryptocurrency:UTC"
    assert calendar_of("Asia/Tokyo", "ETF") == "Asia/Tokyo"
