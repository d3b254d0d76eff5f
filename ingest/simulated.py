"""A market-sized simulated universe, and a way to store it without HTTP.

`scale_listings(n)` names n synthetic stocks spread over the eleven GICS sectors;
`store_simulated` simulates them (ingest/simulate.py, one symbol's bars independent of the
others) and writes their bars through the store's ingest writer (`store.write_batch`, so
`prices` and `ingest_status` look exactly as after an ingest), a chunk of symbols at a time:
memory holds one chunk, never the universe. The scale benchmark uses it to put 25 M bars in
a store in minutes; the scale demo fetches the same market over HTTP instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl

from ingest.simulate import simulate_market
from stockml import store
from stockml.progress import progress_bar

SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
# Symbols simulated and written per transaction: ~5,000 bars each, a few MB per chunk.
STORE_CHUNK = 100


def scale_listings(n: int) -> list[tuple[str, str, str]]:
    """(symbol, name, sector) of `n` synthetic stocks `S00001`... (sectors in turn); the
    first k of `scale_listings(n)` are `scale_listings(k)`. Raises ValueError for n < 1."""
    if n < 1:
        raise ValueError(f"a simulated universe needs at least one symbol, not {n}")
    return [(f"S{i:05d}", f"Simulated {i:05d}", SECTORS[i % len(SECTORS)]) for i in range(1, n + 1)]


def history_start(as_of: date, years: float) -> date:
    """The first day of `years` of history ending `as_of`."""
    return as_of - timedelta(days=round(365.25 * years))


def store_simulated(
    con: Any,
    listings: Sequence[tuple[str, str, str]],
    as_of: date,
    start: date,
    seed: int = 7,
    progress: bool = True,
) -> int:
    """Simulate `listings` from `start` to `as_of` (`seed`: the same bars as the fixture
    server's `MarketData.from_simulator(listings, as_of, seed, start)`) and store them, one
    transaction per STORE_CHUNK symbols, into a store that holds none of them yet.
    Returns the bars stored."""
    store.upsert_symbols(con, list(listings))
    stored = 0
    with progress_bar("simulate + store", len(listings), progress) as bar:
        for i in range(0, len(listings), STORE_CHUNK):
            chunk = list(listings[i : i + STORE_CHUNK])
            market = simulate_market(chunk, as_of, seed, start)
            writes = []
            for symbol, series in market.items():
                bars = pl.DataFrame(
                    {
                        "symbol": pl.repeat(symbol, len(series.dates), eager=True),
                        "date": series.dates,
                        "open": series.open,
                        "high": series.high,
                        "low": series.low,
                        "close": series.close,
                        "adjclose": series.adjclose,
                        "volume": series.volume,
                    }
                )
                writes.append(
                    store.SymbolWrite(
                        symbol,
                        attempts=0,
                        transport="simulator",
                        bars=bars,
                        fetched_from=start,
                        fetched_through=as_of,
                        first_write=True,
                    )
                )
            stored += sum(store.write_batch(con, writes).values())
            bar.advance(len(chunk), status=chunk[-1][0])
    return stored
