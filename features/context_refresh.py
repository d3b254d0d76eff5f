"""The store side of context features: compute the universe's context in chunks and swap
`context_features` whole.

Context columns of one stock depend on every stock (an index, breadth, sector medians,
ranks), so the table is recomputed whole whenever its inputs change: any symbol's prices
fingerprint, the feature catalog, the context catalog, or the symbols' sectors. The digest
of those inputs is stored beside the table (`settings.context_version`); an unchanged store
costs one query. Each symbol's calendar (stockml.calendars) comes from what ingest stored of
it (`ingest_status.exchange_timezone`, `instrument_type`; New York when unknown) and is an
input too.

Memory is bounded by `--memory-limit` (stockml.memory), not by the universe: the pure
stages of `features.context` run on chunks, their outputs go through scratch tables in the
store (DuckDB spills beyond its share of the budget), and only one-row-per-day frames (the
market index, breadth) are ever whole in memory:

    1. stocks    per symbol chunk: prices + sector + ranked features -> `stock_series`
                 -> `_context_stocks`
    2. sections  per chunk of whole days: `_context_stocks` -> `daily_market` (kept: one
                 row a day) and `cross_section` -> `_context_sections`
    3. finish    the market's columns from the whole daily series; per symbol chunk:
                 `_context_stocks` + `_context_sections` -> `finish` -> `_context_new`
    4. swap      `_context_new` becomes `context_features` with the new version, in one
                 transaction; an interrupted refresh leaves the old table and version, and
                 the next one starts over.

`context_frame` (the same stages on the whole universe in memory) is the reference the
chunked result is tested equal to.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import polars as pl
import structlog

from features.catalog import CATALOG_VERSION
from features.context import (
    CONTEXT_CATALOG,
    CONTEXT_COLUMNS,
    DEFAULT_CALENDAR,
    MARKET_SYMBOLS,
    RANKED,
    cross_section,
    daily_market,
    finish,
    market_features,
    market_index,
    reference_calendar,
    stock_series,
)
from stockml import store
from stockml.calendars import calendar_of, with_close_instants
from stockml.memory import MemoryBudget
from stockml.progress import progress_bar

# Bytes one stock-day costs in flight in the largest stage (the polars frames of a chunk
# with their sorted and joined copies, and the Arrow buffer handed to DuckDB). Checked by
# benchmarks/bench_scale.py: chunks of ~3.8 M stock-days under the default 5.9 GiB limit
# peaked at 5.40 GiB at 5,000 symbols x 20 years.
CONTEXT_ROW_BYTES = 1_000


def context_version(con: Any) -> str:
    """Digest of everything the context table is computed from."""
    sectors = con.execute("SELECT symbol, sector FROM symbols ORDER BY symbol").fetchall()
    digest = hashlib.sha256()
    digest.update(json.dumps(CONTEXT_CATALOG, sort_keys=True).encode())
    digest.update(CATALOG_VERSION.encode())
    digest.update(json.dumps(sorted(store.prices_fingerprints(con).items())).encode())
    digest.update(json.dumps(sectors, default=str).encode())
    digest.update(json.dumps(sorted(symbol_calendars(con).items())).encode())
    return digest.hexdigest()[:16]


def symbol_calendars(con: Any) -> dict[str, str]:
    """Each stored symbol's calendar key (stockml.calendars.calendar_of)."""
    rows = con.execute(
        "SELECT DISTINCT p.symbol, i.exchange_timezone, i.instrument_type FROM prices p "
        "LEFT JOIN ingest_status i USING (symbol)"
    ).fetchall()
    return {symbol: calendar_of(zone, kind) for symbol, zone, kind in rows}


def read_bars(
    con: Any, symbols: list[str] | None = None, calendars: dict[str, str] | None = None
) -> pl.DataFrame:
    """What `stock_series` takes, for `symbols` (None: every stored symbol): adjusted
    close, sector, the ranked catalog features, and each row's calendar and session close
    (`calendars`: symbol -> calendar key, read from the store when None), sorted by symbol
    and date."""
    ranked = ", ".join(f"f.{name}" for name in RANKED)
    where, params = "", None
    if symbols is not None:
        where, params = "WHERE p.symbol IN (SELECT unnest(?)) ", [list(symbols)]
    bars = store.query_pl(
        con,
        f"SELECT p.symbol, p.date, p.adjclose AS close, s.sector, {ranked} "
        "FROM prices p LEFT JOIN symbols s USING (symbol) "
        f"LEFT JOIN features f USING (symbol, date) {where}ORDER BY p.symbol, p.date",
        params,
    )
    calendars = symbol_calendars(con) if calendars is None else calendars
    keyed = bars.with_columns(
        pl.col("symbol").replace_strict(calendars, default=DEFAULT_CALENDAR).alias("calendar")
    )
    return with_close_instants(keyed).sort("symbol", "date")


def read_market(con: Any, reference: str = DEFAULT_CALENDAR) -> pl.DataFrame | None:
    """date, close of the first stored market symbol (`MARKET_SYMBOLS`) of the `reference`
    calendar, or None."""
    calendars = symbol_calendars(con)
    for symbol in MARKET_SYMBOLS:
        if calendars.get(symbol, reference) != reference:
            continue
        market = store.query_pl(
            con,
            "SELECT date, adjclose AS close FROM prices WHERE symbol = ? ORDER BY date",
            [symbol],
        )
        if market.height:
            return market
    return None


def store_reference(calendars: dict[str, str]) -> str:
    """The reference calendar of the stored symbols (features.context.reference_calendar)."""
    frame = pl.DataFrame(
        {"symbol": list(calendars), "calendar": list(calendars.values())},
        schema={"symbol": pl.String, "calendar": pl.String},
    )
    return reference_calendar(frame)


def read_universe(con: Any) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(bars, market) of the whole store as `context_frame` takes them, in memory: for
    small stores and tests; `refresh_context` reads in chunks instead."""
    return read_bars(con), read_market(con, store_reference(symbol_calendars(con)))


def day_chunks(con: Any, max_rows: int) -> list[tuple[Any, Any]]:
    """(first, last) dates of consecutive day ranges of `_context_stocks` holding about
    `max_rows` rows each (a day is never split)."""
    days = con.execute(
        "SELECT date, count(*) FROM _context_stocks GROUP BY date ORDER BY date"
    ).fetchall()
    chunks: list[list[Any]] = []
    rows = 0
    for day, n in days:
        if not chunks or rows + n > max_rows:
            chunks.append([day, day])
            rows = 0
        chunks[-1][1] = day
        rows += n
    return [(first, last) for first, last in chunks]


def refresh_context(
    con: Any,
    progress: bool = True,
    memory_limit: int | str | None = None,
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Bring `context_features` in step with the store (needs `features` up to date
    first), in chunks sized to `memory_limit` (bytes or `6G`; None: a quarter of RAM) or
    of `chunk_rows` stock-days when given (tests, benchmarks). Returns rows, chunks,
    day_chunks, seconds and whether it was up_to_date. Raises InputError on a bad limit."""
    started = time.perf_counter()
    store.ensure_context_table(con, CONTEXT_COLUMNS)
    version = context_version(con)
    if store.context_state(con) == version:
        return {"rows": 0, "up_to_date": True, "seconds": 0.0}
    budget = MemoryBudget.of(memory_limit)
    budget.bound_duckdb(con)
    try:
        max_rows = chunk_rows or budget.chunk_rows(CONTEXT_ROW_BYTES)
        sizes = store.row_counts(con, sorted(store.prices_fingerprints(con)))
        batches = store.symbol_batches(sizes, max_rows)
        total = sum(sizes.values())
        calendars = symbol_calendars(con)
        reference = store_reference(calendars)
        market = read_market(con, reference)
        store.reset_context_scratch(con, CONTEXT_COLUMNS)
        days: list[tuple[Any, Any]] = []
        with progress_bar("context", 3 * total, progress) as bar:
            for batch in batches:
                bar.update(status=f"1/3 stock series · {batch[-1]}")
                stocks = stock_series(read_bars(con, batch, calendars))
                store.append_context_scratch(con, "_context_stocks", stocks)
                bar.advance(stocks.height)
            days = day_chunks(con, max_rows) if batches else []
            daily = [
                pl.DataFrame(schema={"date": pl.Date, "closes_at": pl.Int64, "ret": pl.Float64})
            ]
            for first, last in days:
                bar.update(status=f"2/3 cross-sections · {last}")
                stocks = store.query_pl(
                    con,
                    "SELECT * FROM _context_stocks WHERE date BETWEEN ? AND ?",
                    [first, last],
                )
                daily.append(daily_market(stocks).filter(pl.col("calendar") == reference))
                store.append_context_scratch(con, "_context_sections", cross_section(stocks))
                bar.advance(stocks.height)
            stocks = None  # the last day chunk, before stage 3 reads its own
            days_frame = pl.concat(daily, how="diagonal_relaxed")
            markets = market_features(market_index(days_frame, market), days_frame)
            for batch in batches:
                bar.update(status=f"3/3 market, beta · {batch[-1]}")
                picked = "WHERE symbol IN (SELECT unnest(?))"
                stocks = store.query_pl(
                    con,
                    "SELECT symbol, date, calendar, closes_at, r1, r20 "
                    f"FROM _context_stocks {picked}",
                    [batch],
                )
                sections = store.query_pl(con, f"SELECT * FROM _context_sections {picked}", [batch])
                frame = finish(stocks, markets, sections, reference)
                store.append_context_scratch(con, "_context_new", frame)
                bar.advance(frame.height)
            bar.update(status="swapping in the new table")
            store.swap_context(con, version)
    finally:
        budget.release_duckdb(con)
    summary = {
        "rows": total,
        "up_to_date": False,
        "chunks": len(batches),
        "day_chunks": len(days),
        "market": "equal-weighted universe" if market is None else "stored market symbol",
        "seconds": round(time.perf_counter() - started, 2),
    }
    structlog.get_logger("features").info("context_refreshed", **summary)
    return summary
