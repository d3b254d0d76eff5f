"""Helpers for ingest tests: a real fixture server on loopback and in-process runs."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ingest.client import FetchPolicy
from ingest.run import IngestRequest, IngestResult, run_ingest
from ingest.server import FaultPlan, MarketData, ServerThread, YahooServer
from stockml.store import query_pl

# Symbols with no dividend or split after 2019: their history never moves between runs.
STILL = ["ADBE", "AMZN", "BKNG", "GOOGL", "ALGN", "ANSS"]
# Symbols used for fault tests (any real ones do).
FAULTY = ["AAPL", "MSFT", "JPM", "XOM", "KO", "PFE", "NVDA", "AMD", "CAT", "BA", "MRK", "T", "VZ"]
START = date(2020, 6, 1)
END = date(2021, 3, 31)


def load_market(parquet: Path, symbols: list[str] | None = None) -> MarketData:
    return MarketData.from_parquet(parquet, symbols)


def fresh_market(base: MarketData) -> MarketData:
    """A deep copy, so a test may inject splits without touching other tests' data."""
    return MarketData(copy.deepcopy(base.series), base.as_of)


@contextlib.contextmanager
def serving(market: MarketData, **kwargs) -> Iterator[ServerThread]:
    plan = kwargs.pop("faults", None)
    if isinstance(plan, str):
        plan = FaultPlan.parse(plan)
    with ServerThread(YahooServer(market, plan, **kwargs)) as thread:
        yield thread


def ingest(
    db: Path,
    base_url: str,
    symbols: list[str],
    start: date = START,
    end: date = END,
    **policy,
) -> IngestResult:
    defaults = {"rate": 200.0, "concurrency": 8, "timeout": 5.0, "retries": 2, "backoff_base": 0.05}
    defaults.update(policy)
    request = IngestRequest(
        symbols=symbols,
        start=start,
        end=end,
        db_path=db,
        policy=FetchPolicy(base_url=base_url, **defaults),
        progress=False,
    )
    return run_ingest(request)


def table(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return query_pl(con, sql)
    finally:
        con.close()


def served_bars(market: MarketData, symbol: str, first: date, last: date) -> pl.DataFrame:
    s = market.series[symbol]
    frame = pl.DataFrame(
        {
            "date": s.dates,
            "open": s.open,
            "high": s.high,
            "low": s.low,
            "close": s.close,
            "adjclose": s.adjclose,
            "volume": s.volume,
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    return frame.filter(pl.col("date").is_between(first, last))
