"""Context features: the market, the sector and the cross-section around each stock-day.

The 179 catalog features describe one stock's own history; the outcome of a 14-day
+10 % / -5 % trade depends as much on the market and the sector (in a falling market most
stocks hit their stop together). `context.csv` beside this module names each column with
its formula and why it is there; `context_frame` computes them, pure (a frame in, a frame
out, no I/O; `features/context_refresh.py` reads the store and writes `context_features`).

Point in time: day t uses only bars up to t, of every stock. Every window looks back (a
shift, a trailing rolling mean); every per-day statistic (index return, breadth, sector
median, percentile rank) uses only the universe's values of day t itself. A test truncates
the history at a day and checks nothing before it changes.

Calendars (stockml.calendars): each symbol's context is computed on its own trading
calendar. Breadth, sector medians and ranks are per calendar and day, so a symbol of
another calendar (BTC-USD trading every day, a Tokyo stock) never adds or removes days for
the others. The market index and breadth come from the reference calendar (the one with the
most symbols; New York on a tie); a symbol of another calendar sees them as of its own
session's close (`closes_at`, an as-of join), never a market day that closed after it: a
Tokyo stock's day t sees New York's day t-1. Its beta and `mkt_r1` then use the index's
move between its own consecutive days. `bars` without `calendar` / `closes_at` columns are
one calendar (New York).

The market index M is the stored universe, equal-weighted: its daily return is the mean of
the stocks' close-to-close returns that day (each clipped to +-50 % so one bad tick cannot
move the index), M starts at 1 on the first stored day. When a market symbol is stored
(`^GSPC`, then `SPY`, the first found), M is its adjusted close instead; breadth, sector and
rank features always come from the stocks.

Percentile ranks are (rank - 1) / (n - 1) with average ranks among the n stocks that have
the feature that day, in [0, 1] (0.5 when n = 1); a stock without the feature gets NULL.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from stockml.defaults import EXCHANGE_TZ_NAME

_CSV = Path(__file__).with_name("context.csv")
with _CSV.open(newline="") as _handle:
    CONTEXT_CATALOG: list[dict[str, str]] = list(csv.DictReader(_handle))
CONTEXT_COLUMNS: list[str] = [row["name"] for row in CONTEXT_CATALOG]

# Catalog features ranked across the universe each day (xs_rank_<name>): momentum over a
# week, a month and a year (skipping the last month), volatility, RSI, volume against its
# average and distance from the 52-week high. See context.csv for why each.
RANKED: tuple[str, ...] = (
    "ret_5",
    "ret_20",
    "ret_250_skip_20",
    "natr_14",
    "rsi_14",
    "volume_ratio_20",
    "dist_52w_high",
)
MARKET_SYMBOLS: tuple[str, ...] = ("^GSPC", "SPY")
BREADTH = ("mkt_breadth_sma_50", "mkt_high_20_share", "mkt_low_20_share")
RETURN_CLIP = 0.5
UNKNOWN_SECTOR = "Unknown"
DEFAULT_CALENDAR = EXCHANGE_TZ_NAME


def with_calendar(bars: pl.DataFrame) -> pl.DataFrame:
    """`bars` with `calendar` and `closes_at` columns (one calendar when it has none)."""
    if "calendar" not in bars.columns:
        bars = bars.with_columns(pl.lit(DEFAULT_CALENDAR).alias("calendar"))
    if "closes_at" not in bars.columns:
        bars = bars.with_columns(pl.lit(None, dtype=pl.Int64).alias("closes_at"))
    return bars


def reference_calendar(calendars: pl.DataFrame) -> str:
    """The calendar with the most symbols (New York, then by name, on a tie), from a frame
    of symbol, calendar (any number of rows per symbol)."""
    if calendars.is_empty():
        return DEFAULT_CALENDAR
    counts = calendars.group_by("calendar").agg(pl.col("symbol").n_unique().alias("n"))
    counts = counts.with_columns((pl.col("calendar") != DEFAULT_CALENDAR).alias("other"))
    return counts.sort(["n", "other", "calendar"], descending=[True, False, False])["calendar"][0]


def _trailing(name: str, n: int) -> pl.Expr:
    """close_t / close_(t-n) - 1 within a symbol's rows (its trading days)."""
    c = pl.col(name)
    return c / c.shift(n) - 1


def stock_series(bars: pl.DataFrame) -> pl.DataFrame:
    """Stage 1, per symbol (needs each symbol's whole history, no other symbol).

    bars: symbol, date, close (adjusted, > 0), sector (NULL: "Unknown"), the `RANKED`
    catalog columns (NaN or NULL during warm-up) and optionally calendar and closes_at
    (`with_calendar`), any row order. Returns symbol, date, calendar, closes_at, sector, the
    ranked columns (NaN as NULL), r1/r5/r20/r60 (trailing returns over the symbol's own
    trading rows) and above/high/low (close above its 50-day mean, at its 20-day high, at
    its 20-day low; NULL during warm-up), sorted by symbol and date."""
    ranked = [pl.col(name).fill_nan(None) for name in RANKED]
    close = pl.col("close")
    return (
        with_calendar(bars)
        .select("symbol", "date", "calendar", "closes_at", "close", "sector", *ranked)
        .with_columns(pl.col("sector").fill_null(UNKNOWN_SECTOR))
        .sort("symbol", "date")
        .with_columns(
            _trailing("close", 1).over("symbol").alias("r1"),
            _trailing("close", 5).over("symbol").alias("r5"),
            _trailing("close", 20).over("symbol").alias("r20"),
            _trailing("close", 60).over("symbol").alias("r60"),
            (close > close.rolling_mean(50)).over("symbol").alias("above"),
            (close >= close.rolling_max(20)).over("symbol").alias("high"),
            (close <= close.rolling_min(20)).over("symbol").alias("low"),
        )
        .drop("close")
    )


def daily_market(stocks: pl.DataFrame) -> pl.DataFrame:
    """Stage 2a, per calendar and day (needs every stock of a day, no other day): calendar,
    date, closes_at, ret (the equal-weighted index's return: the mean of the day's r1, each
    clipped to +-RETURN_CLIP; NULL when no stock has one) and the three breadth shares,
    sorted by calendar and date."""
    return (
        stocks.group_by("calendar", "date")
        .agg(
            pl.col("closes_at").max(),
            pl.col("r1").clip(-RETURN_CLIP, RETURN_CLIP).mean().alias("ret"),
            pl.col("above").cast(pl.Float64).mean().alias("mkt_breadth_sma_50"),
            pl.col("high").cast(pl.Float64).mean().alias("mkt_high_20_share"),
            pl.col("low").cast(pl.Float64).mean().alias("mkt_low_20_share"),
        )
        .sort("calendar", "date")
    )


def cross_section(stocks: pl.DataFrame) -> pl.DataFrame:
    """Stage 2b, per calendar and day: symbol, date and the sec_* and xs_rank_* columns of
    every row of `stocks` (stage 1's frame, or any set of whole days of it)."""

    def rank(name: str) -> pl.Expr:
        col = pl.col(name)
        n = col.count().over("calendar", "date")
        pct = (col.rank("average").over("calendar", "date") - 1) / (n - 1)
        return pl.when(col.is_null()).then(None).when(n == 1).then(0.5).otherwise(pct)

    def sector_median(name: str) -> pl.Expr:
        return pl.col(name).median().over("calendar", "date", "sector")

    return stocks.select(
        "symbol",
        "date",
        sector_median("r20").alias("sec_ret_20"),
        sector_median("r60").alias("sec_ret_60"),
        (pl.col("r5") - sector_median("r5")).alias("sec_rel_ret_5"),
        (pl.col("r20") - sector_median("r20")).alias("sec_rel_ret_20"),
        (pl.col("r60") - sector_median("r60")).alias("sec_rel_ret_60"),
        *[rank(name).alias(f"xs_rank_{name}") for name in RANKED],
    )


def market_index(daily: pl.DataFrame, market: pl.DataFrame | None = None) -> pl.DataFrame:
    """date, closes_at, level (M), ret (daily return of M; NULL on the first day), one row
    per market day: from `daily` (date, closes_at, ret: `daily_market` of the reference
    calendar over every day, in any number of pieces) or from `market` (date, close of a
    market symbol of that calendar) when given. M starts at 1."""
    closes = daily.select("date", "closes_at")
    if market is not None and market.height:
        frame = market.select("date", pl.col("close").alias("level")).sort("date")
        frame = frame.join(closes, on="date", how="left")
        return frame.with_columns((pl.col("level") / pl.col("level").shift(1) - 1).alias("ret"))
    daily = daily.select("date", "closes_at", "ret").sort("date")
    return daily.with_columns((1 + pl.col("ret").fill_null(0.0)).cum_prod().alias("level"))


def market_features(index: pl.DataFrame, breadth: pl.DataFrame) -> pl.DataFrame:
    """date, closes_at, mkt_level (M), mkt_r1 (the index's daily return) and the mkt_*
    columns that are the same for every stock that day, from the whole index history and the
    daily breadth shares (date and the three shares)."""
    m, r = pl.col("level"), pl.col("ret")
    return (
        index.sort("date")
        .with_columns(
            _trailing("level", 5).alias("mkt_ret_5"),
            _trailing("level", 20).alias("mkt_ret_20"),
            _trailing("level", 60).alias("mkt_ret_60"),
            r.rolling_std(20).alias("mkt_vol_20"),
            (m / m.rolling_mean(50) - 1).alias("mkt_dist_sma_50"),
            (m / m.rolling_mean(200) - 1).alias("mkt_dist_sma_200"),
        )
        .join(breadth.select("date", *BREADTH), on="date", how="left")
        .rename({"ret": "mkt_r1", "level": "mkt_level"})
    )


def finish(
    stocks: pl.DataFrame,
    markets: pl.DataFrame,
    sections: pl.DataFrame,
    reference: str = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Stage 3, per symbol: the context columns of `stocks` (stage 1's symbol, date,
    calendar, closes_at, r1, r20 for whole symbols) from the `reference` calendar's market
    columns (`market_features`) and the rows' cross-section (`cross_section`). Rows of the
    reference calendar take the market of their own day; others the newest market day that
    closed at or before their own close. Returns symbol, date, `CONTEXT_COLUMNS` (Float64),
    sorted by symbol and date."""
    own = with_calendar(stocks).select("symbol", "date", "calendar", "closes_at", "r1", "r20")
    home = own.filter(pl.col("calendar") == reference).join(
        markets.drop("closes_at"), on="date", how="left"
    )
    away = own.filter(pl.col("calendar") != reference)
    if away.height:
        timed = markets.filter(pl.col("closes_at").is_not_null()).drop("date").sort("closes_at")
        away = (
            away.sort("closes_at")
            .join_asof(timed, on="closes_at", strategy="backward")
            .sort("symbol", "date")
            .with_columns(
                (pl.col("mkt_level") / pl.col("mkt_level").shift(1) - 1)
                .over("symbol")
                .alias("mkt_r1")
            )
        )
        home = pl.concat([home, away.select(home.columns)])
    frame = home.join(sections, on=["symbol", "date"], how="left").sort("symbol", "date")
    r, big_r = pl.col("r1"), pl.col("mkt_r1")
    # beta over 60 rows: (E[rR] - E[r]E[R]) / (E[R^2] - E[R]^2), NULL while either is
    # missing in the window or when the index did not move at all.
    both = r.is_not_null() & big_r.is_not_null()
    rr, mm = pl.when(both).then(r), pl.when(both).then(big_r)
    mean = lambda e: e.rolling_mean(60).over("symbol")  # noqa: E731
    var = mean(mm * mm) - mean(mm) ** 2
    beta = pl.when(var > 1e-14).then((mean(rr * mm) - mean(rr) * mean(mm)) / var)
    out = frame.with_columns(
        (pl.col("r20") - pl.col("mkt_ret_20")).alias("mkt_rel_ret_20"),
        beta.alias("beta_60"),
    )
    return out.select("symbol", "date", *[pl.col(c).cast(pl.Float64) for c in CONTEXT_COLUMNS])


def context_frame(bars: pl.DataFrame, market: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every context column of `CONTEXT_COLUMNS` for every row of `bars`, in memory.

    bars: one row per symbol and trading day with symbol, date, close (adjusted, > 0),
      sector (NULL: its own "Unknown" group) and the `RANKED` catalog columns (NaN or NULL
      during warm-up). market: optional date, close of a market symbol (see module doc).
    Returns symbol, date and the context columns (Float64, NULL where a window is not full
    yet), sorted by symbol and date. Raises polars' ColumnNotFoundError on a missing column.
    The three stages are those `features/context_refresh.py` runs in chunks (of symbols for
    stages 1 and 3, of days for stage 2) to bound memory at market scale.
    """
    stocks = stock_series(bars)
    reference = reference_calendar(stocks.select("symbol", "calendar"))
    daily = daily_market(stocks).filter(pl.col("calendar") == reference)
    markets = market_features(market_index(daily, market), daily)
    return finish(stocks, markets, cross_section(stocks), reference)
