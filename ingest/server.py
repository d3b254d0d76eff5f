"""A Yahoo-compatible chart server for tests, benchmarks and the offline demo.

Speaks `GET /v8/finance/chart/{symbol}` in Yahoo's format (see ../shared/yahoo-chart-api.md),
backed by the shared real data set or the seeded simulator, and misbehaves on demand:

- its own rate limit, answered like Yahoo: 429, `text/html`, body `Edge: Too Many Requests`;
- `block_plain`: 429 `text/html` for every request without the client hints a real Chrome
  sends (`sec-ch-ua`, `sec-fetch-mode`), standing in for Yahoo's TLS-fingerprint check;
- a fault plan per symbol (`FaultPlan.parse("AAPL=429*3;MSFT=hang;XOM=nulls*")`):
    429 429ra hang drip 500 chart_null reset truncated html   transient (one request each;
                                                 429ra carries Retry-After: 1)
    nulls dup_last unknown empty                        shape of the data
  `kind` applies to the next request, `kind*N` to the next N, `kind*` to all of them;
  after the plan is used up the symbol is served normally.
Every request is logged (arrival time, symbol, status, headers) for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from aiohttp import web

from ingest.simulate import Series, simulate_market
from ingest.yahoo import daily_utc_offsets

NEW_YORK = ZoneInfo("America/New_York")
TRANSIENT = ("429", "429ra", "hang", "drip", "500", "chart_null", "reset", "truncated", "html")
SHAPES = ("nulls", "dup_last", "unknown", "empty")
FAULT_KINDS = TRANSIENT + SHAPES
TOO_MANY = b"Edge: Too Many Requests"


# ---- data -----------------------------------------------------------------------------


def _session_open_epoch(days: np.ndarray) -> np.ndarray:
    """09:30 New York of each day, in epoch seconds (Yahoo's daily bar stamp)."""
    base, offsets = daily_utc_offsets("America/New_York")
    day_number = days.astype("datetime64[D]").astype(np.int64)
    return day_number * 86400 + 9 * 3600 + 1800 - offsets[day_number - base]


class MarketData:
    """Per-symbol bars as served today, with hooks to change history between runs."""

    def __init__(self, series: dict[str, Series], as_of: date | None = None) -> None:
        self.series = series
        self.as_of = as_of
        self._stamps: dict[str, np.ndarray] = {}

    @classmethod
    def from_parquet(cls, path: Path, symbols: list[str] | None = None) -> MarketData:
        import polars as pl

        frame = pl.read_parquet(path)
        if symbols is not None:
            frame = frame.filter(pl.col("symbol").is_in(symbols))
        series: dict[str, Series] = {}
        for (symbol,), part in frame.sort("symbol", "date").group_by("symbol", maintain_order=True):
            days = part["date"].to_numpy().astype("datetime64[D]")
            div = part["dividend"].to_numpy()
            split = part["split_ratio"].to_numpy()
            series[symbol] = Series(
                days,
                part["open"].to_numpy(),
                part["high"].to_numpy(),
                part["low"].to_numpy(),
                part["close"].to_numpy(),
                part["adjclose"].to_numpy(),
                part["volume"].to_numpy().astype(np.int64),
                {days[i]: float(div[i]) for i in np.flatnonzero(div > 0)},
                {days[i]: float(split[i]) for i in np.flatnonzero(split != 1.0)},
            )
        return cls(series)

    @classmethod
    def from_simulator(
        cls, listings: list[tuple[str, str, str]], as_of: date, seed: int = 7
    ) -> MarketData:
        return cls(simulate_market(listings, as_of, seed), as_of)

    def stamps(self, symbol: str) -> np.ndarray:
        if symbol not in self._stamps:
            self._stamps[symbol] = _session_open_epoch(self.series[symbol].dates)
        return self._stamps[symbol]

    def inject_split(self, symbol: str, day: date, ratio: float) -> None:
        """A split on `day`: history before it is re-expressed in new shares."""
        s = self.series[symbol]
        before = s.dates < np.datetime64(day, "D")
        for arr in (s.open, s.high, s.low, s.close, s.adjclose):
            arr[before] /= ratio
        s.volume[before] = np.round(s.volume[before] * ratio).astype(np.int64)
        s.splits[np.datetime64(day, "D")] = ratio

    def inject_dividend(self, symbol: str, day: date, amount: float) -> None:
        """A dividend with ex-date `day`: adjclose before it scales down, OHLC stay."""
        s = self.series[symbol]
        i = int(np.searchsorted(s.dates, np.datetime64(day, "D")))
        if i == 0:
            raise ValueError("a dividend needs a previous close")
        s.adjclose[:i] *= 1.0 - amount / s.close[i - 1]
        s.dividends[np.datetime64(day, "D")] = amount


# ---- faults ---------------------------------------------------------------------------


@dataclass
class FaultPlan:
    """Per-symbol queues of faults; `kind*` (forever) stays at the head of its queue."""

    queues: dict[str, list[list]] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        plan = cls()
        for part in filter(None, (p.strip() for p in spec.replace(",", ";").split(";"))):
            if "=" not in part:
                raise ValueError(f"fault plan entry {part!r} is not SYMBOL=KIND")
            symbol, kinds = part.split("=", 1)
            for token in kinds.split("+"):
                kind, _, count = token.partition("*")
                if kind not in FAULT_KINDS:
                    raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
                n = -1 if _ and count == "" else int(count or 1)
                plan.add(symbol.strip().upper(), kind, n)
        return plan

    @classmethod
    def random(cls, symbols: list[str], fraction: float, seed: int) -> FaultPlan:
        """A transient fault for `fraction` of the symbols: each recovers on retry."""
        rng = random.Random(seed)
        plan = cls()
        kinds = ("429", "500", "chart_null", "truncated", "reset", "html")
        for symbol in rng.sample(symbols, round(len(symbols) * fraction)):
            plan.add(symbol, rng.choice(kinds), 1)
        return plan

    def add(self, symbol: str, kind: str, count: int = 1) -> None:
        self.queues.setdefault(symbol, []).append([kind, count])

    def take(self, symbol: str) -> tuple[str | None, set[str]]:
        """The transient fault for this request, and the data-shape faults in force."""
        queue = self.queues.get(symbol, [])
        shapes = {k for k, _ in queue if k in SHAPES}
        for entry in queue:
            kind, count = entry
            if kind in SHAPES:
                continue
            if count > 0:
                entry[1] -= 1
                if entry[1] == 0:
                    queue.remove(entry)
            return kind, shapes
        return None, shapes


# ---- the server -----------------------------------------------------------------------


@dataclass
class RequestRecord:
    at: float  # time.monotonic() on arrival
    symbol: str
    status: int
    fault: str | None
    user_agent: str
    client_hints: bool


class YahooServer:
    def __init__(
        self,
        data: MarketData,
        faults: FaultPlan | None = None,
        rate_limit: float | None = None,
        latency: float = 0.0,
        block_plain: bool = False,
        drip_interval: float = 1.0,
    ) -> None:
        self.data = data
        self.faults = faults or FaultPlan()
        self.rate_limit = rate_limit
        self.latency = latency
        self.block_plain = block_plain
        self.drip_interval = drip_interval
        self.log: list[RequestRecord] = []
        self._recent: list[float] = []
        self.app = web.Application()
        self.app.router.add_get("/v8/finance/chart/{symbol}", self.chart)

    def _over_limit(self, now: float) -> bool:
        if not self.rate_limit:
            return False
        self._recent = [t for t in self._recent if now - t < 1.0]
        self._recent.append(now)
        return len(self._recent) > self.rate_limit

    def _record(
        self, request: web.Request, symbol: str, status: int, fault: str | None, at: float
    ) -> None:
        hints = "sec-ch-ua" in request.headers and "sec-fetch-mode" in request.headers
        self.log.append(
            RequestRecord(at, symbol, status, fault, request.headers.get("User-Agent", ""), hints)
        )

    async def chart(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        symbol = request.match_info["symbol"].upper()
        if self.block_plain and not (
            "sec-ch-ua" in request.headers and "sec-fetch-mode" in request.headers
        ):
            self._record(request, symbol, 429, "blocked", at)
            return web.Response(status=429, body=TOO_MANY, content_type="text/html")
        if self._over_limit(at):
            self._record(request, symbol, 429, "rate_limit", at)
            return web.Response(status=429, body=TOO_MANY, content_type="text/html")
        fault, shapes = self.faults.take(symbol)
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "429":
            self._record(request, symbol, 429, fault, at)
            return web.Response(status=429, body=b"Too Many Requests", content_type="text/html")
        if fault == "429ra":  # a 429 that says when to come back, as Yahoo rarely does
            self._record(request, symbol, 429, fault, at)
            return web.Response(
                status=429,
                body=b"Too Many Requests",
                content_type="text/html",
                headers={"Retry-After": "1"},
            )
        if fault == "hang":
            self._record(request, symbol, 0, fault, at)
            await asyncio.sleep(3600)
        if fault == "500":
            self._record(request, symbol, 500, fault, at)
            return web.Response(
                status=500,
                body=b"<html><body>Internal error</body></html>",
                content_type="text/html",
            )
        status, body = self._chart_body(symbol, request.query, shapes)
        if fault == "chart_null" and status == 200:
            body = b'{"chart": null}'
        elif fault == "truncated" and status == 200:
            body = body[: max(len(body) // 2, 1)]
        elif fault == "html" and status == 200:
            self._record(request, symbol, 200, fault, at)
            return web.Response(
                status=200, body=b"<!doctype html><html>Yahoo</html>", content_type="text/html"
            )
        self._record(request, symbol, status, fault, at)
        if fault == "reset" and status == 200:
            # Headers and part of the body, then a TCP reset: the connection dies mid-answer.
            # (A reset before any byte would be re-sent silently by libcurl and aiohttp on
            # a reused connection; mid-body, every client must see the failure.)
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 3])
            await asyncio.sleep(0.01)
            transport = request.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if transport is not None:
                transport.close()
            return response
        if fault == "drip" and status == 200:
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            for i in range(len(body)):
                await response.write(body[i : i + 1])
                await asyncio.sleep(self.drip_interval)
            return response
        return web.Response(status=status, body=body, content_type="application/json")

    def _chart_body(self, symbol: str, query, shapes: set[str]) -> tuple[int, bytes]:
        if "unknown" in shapes or symbol not in self.data.series:
            return 404, _envelope("Not Found", "No data found, symbol may be delisted")
        if query.get("interval", "1d") != "1d":
            return 400, _envelope(
                "Bad Request", f"Invalid input - interval={query.get('interval')} is not supported"
            )
        try:
            period1 = int(query.get("period1", "0"))
            period2 = int(query.get("period2", str(int(time.time()))))
        except ValueError:
            return 400, _envelope("Bad Request", "Invalid input - period1/period2")
        series = self.data.series[symbol]
        stamps = self.data.stamps(symbol)
        served = np.ones(len(stamps), dtype=bool)
        if self.data.as_of is not None:
            served = series.dates <= np.datetime64(self.data.as_of, "D")
        if len(stamps) and period2 <= stamps[0]:
            return 400, _envelope(
                "Bad Request", f"Data doesn't exist for startDate = {period1}, endDate = {period2}"
            )
        idx = np.flatnonzero(served & (stamps >= period1) & (stamps < period2))
        meta = _meta(symbol, stamps[0] if len(stamps) else 0)
        if "empty" in shapes or len(idx) == 0:
            result = {"meta": meta, "indicators": {"quote": [{}], "adjclose": [{}]}}
            return 200, orjson.dumps({"chart": {"result": [result], "error": None}})
        ts = stamps[idx].tolist()
        cols = {
            "open": series.open[idx].tolist(),
            "high": series.high[idx].tolist(),
            "low": series.low[idx].tolist(),
            "close": series.close[idx].tolist(),
            "volume": series.volume[idx].tolist(),
        }
        adj = series.adjclose[idx].tolist()
        if "nulls" in shapes and len(ts) > 4:
            for key in cols:  # a whole null row
                cols[key][1] = None
            adj[1] = None
            for key in ("open", "high", "low", "close"):  # a volume-only row
                cols[key][3] = None
            adj[3] = None
        if "dup_last" in shapes:
            # Today's unfinished bar: the last day again, stamped at the last trade, and a
            # row stamped on or after period2.
            ts = [*ts, ts[-1] + 6 * 3600, period2 + 3600]
            for key in cols:
                cols[key] = [*cols[key], cols[key][-1], cols[key][-1]]
            adj = [*adj, adj[-1], adj[-1]]
        lo, hi = ts[0], ts[-1]
        events: dict = {}
        div = {
            str(int(s)): {"amount": a, "date": int(s)}
            for d, a in series.dividends.items()
            for s in [self._stamp_of(symbol, d)]
            if lo <= s <= hi
        }
        spl = {
            str(int(s)): {
                "date": int(s),
                "numerator": r,
                "denominator": 1.0,
                "splitRatio": f"{r:g}:1",
            }
            for d, r in series.splits.items()
            for s in [self._stamp_of(symbol, d)]
            if lo <= s <= hi
        }
        if div:
            events["dividends"] = div
        if spl:
            events["splits"] = spl
        result = {
            "meta": meta,
            "timestamp": ts,
            "indicators": {"quote": [cols], "adjclose": [{"adjclose": adj}]},
        }
        if events:
            result["events"] = events
        return 200, orjson.dumps({"chart": {"result": [result], "error": None}})

    def _stamp_of(self, symbol: str, day: np.datetime64) -> int:
        series = self.data.series[symbol]
        i = int(np.searchsorted(series.dates, day))
        if i < len(series.dates) and series.dates[i] == day:
            return int(self.data.stamps(symbol)[i])
        return int(_session_open_epoch(np.array([day]))[0])


def _envelope(code: str, description: str) -> bytes:
    return orjson.dumps(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}
    )


def _meta(symbol: str, first_trade: int) -> dict:
    return {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NMS",
        "instrumentType": "EQUITY",
        "firstTradeDate": int(first_trade),
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "dataGranularity": "1d",
        "range": "",
    }


class ServerThread:
    """Run a YahooServer on 127.0.0.1 in a background thread (tests, benchmarks, demo)."""

    def __init__(self, server: YahooServer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yahoo-server", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(
            self.server.app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,  # a hung handler ends when its client gives up
            shutdown_timeout=0.5,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("fixture server did not start")
        return self

    def stop(self) -> None:
        async def _shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
