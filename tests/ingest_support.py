"""Helpers for ingest tests: a real fixture server on loopback and in-process runs."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import polars as pl
from aiohttp import web

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


@dataclass
class CraftedListing:
    """Hand-made daily bars of one symbol, stamped at `open_at` local time in zone `tz`.
    The other fields shape the answer as Yahoo has been seen to: `meta` entries to send
    (e.g. another symbol or currency), days served with null prices or left out, volumes
    as served, split events {day: (numerator, denominator)}, dividends {day: amount}, and
    no adjclose block at all."""

    tz: str
    days: list[date]
    open_at: time = time(9, 30)
    # meta.currentTradingPeriod.regular.end to announce (epoch seconds), if any.
    session_end: int | None = None
    meta: dict = field(default_factory=dict)
    null_days: set[date] = field(default_factory=set)
    missing_days: set[date] = field(default_factory=set)
    volumes: dict[date, float] = field(default_factory=dict)
    splits: dict[date, tuple[float, float]] = field(default_factory=dict)
    dividends: dict[date, float] = field(default_factory=dict)
    adjclose: bool = True

    def stamp(self, day: date) -> int:
        return int(datetime.combine(day, self.open_at, tzinfo=ZoneInfo(self.tz)).timestamp())

    def close(self, day: date) -> float:
        """A price that says which day it belongs to: 100 + days since 2000-01-01, / 100."""
        return 100.0 + (day - date(2000, 1, 1)).days / 100


def weekdays(first: date, last: date) -> list[date]:
    count = (last - first).days + 1
    return [d for d in (first + timedelta(days=i) for i in range(count)) if d.weekday() < 5]


def chart_body(
    meta: dict,
    stamps: list[int],
    closes: list[float | None],
    volumes: list | None = None,
    events: dict | None = None,
    adjclose: bool = True,
) -> bytes:
    """A 200 chart body in Yahoo's shape: open = close, high/low one either side (None
    closes are served as a null row)."""
    result = {
        "meta": meta,
        "timestamp": stamps,
        "indicators": {
            "quote": [
                {
                    "open": closes,
                    "high": [None if c is None else c + 1 for c in closes],
                    "low": [None if c is None else c - 1 for c in closes],
                    "close": closes,
                    "volume": [1000] * len(closes) if volumes is None else volumes,
                }
            ],
            "adjclose": [{"adjclose": closes}] if adjclose else [{}],
        },
    }
    if events:
        result["events"] = events
    # The standard library writes any integer as Yahoo may (orjson refuses 2^64).
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


@dataclass
class CraftedServer:
    """A chart endpoint serving `CraftedListing`s in Yahoo's shape (any exchange zone), for
    quirks the fixture server does not have. Symbols in `stray_before` also get the one bar
    just before period1, as Yahoo sometimes sends. `requests` records (raw path, period1,
    period2) of every request."""

    listings: dict[str, CraftedListing]
    stray_before: set[str] = field(default_factory=set)
    requests: list[tuple[str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/v8/finance/chart/{symbol}", self._chart)

    async def _chart(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        period1, period2 = int(request.query["period1"]), int(request.query["period2"])
        self.requests.append((request.raw_path.split("?")[0], period1, period2))
        listing = self.listings.get(symbol)
        if listing is None:
            envelope = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
            body = {"chart": {"result": None, "error": envelope}}
            return web.Response(
                status=404, body=orjson.dumps(body), content_type="application/json"
            )
        days = [
            d
            for d in listing.days
            if period1 <= listing.stamp(d) < period2 and d not in listing.missing_days
        ]
        before = [d for d in listing.days if listing.stamp(d) < period1]
        if symbol in self.stray_before and before:
            days.insert(0, before[-1])
        meta: dict = {"symbol": symbol, "exchangeTimezoneName": listing.tz, **listing.meta}
        if listing.session_end is not None:
            meta["currentTradingPeriod"] = {"regular": {"end": listing.session_end}}
        stamps = [listing.stamp(d) for d in days]
        closes = [None if d in listing.null_days else listing.close(d) for d in days]
        volumes = [listing.volumes.get(d, 1000) for d in days]
        events: dict = {}
        for d, (num, den) in listing.splits.items():
            if period1 <= listing.stamp(d) < period2:
                split = {"date": listing.stamp(d), "numerator": num, "denominator": den}
                events.setdefault("splits", {})[str(listing.stamp(d))] = split
        for d, amount in listing.dividends.items():
            if period1 <= listing.stamp(d) < period2:
                dividend = {"amount": amount, "date": listing.stamp(d)}
                events.setdefault("dividends", {})[str(listing.stamp(d))] = dividend
        body = chart_body(meta, stamps, closes, volumes, events, listing.adjclose)
        return web.Response(body=body, content_type="application/json")


@contextlib.contextmanager
def serving_crafted(server: CraftedServer) -> Iterator[ServerThread]:
    with ServerThread(server) as thread:  # type: ignore[arg-type]
        yield thread
