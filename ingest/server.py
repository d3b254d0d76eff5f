"""A Yahoo-compatible chart server for tests, benchmarks and the offline demo.

Speaks `GET /v8/finance/chart/{symbol}` in Yahoo's format (see ../shared/yahoo-chart-api.md),
backed by the shared real data set or the seeded simulator (`ingest.simulate.MarketData`),
and misbehaves on demand:

- its own rate limit, answered like Yahoo: 429, `text/html`, body `Edge: Too Many Requests`;
- `block_plain`: 429 `text/html` for every request without the client hints a real Chrome
  sends (`sec-ch-ua`, `sec-fetch-mode`), standing in for Yahoo's TLS-fingerprint check;
- a fault plan per symbol (`FaultPlan.parse("AAPL=429*3;MSFT=hang;XOM=nulls*")`):
    429 429ra hang drip 500 chart_null reset truncated html   transient (one request each;
                                                 429ra carries Retry-After: 1)
    nulls dup_last unknown empty no_adjclose            shape of the data
  `kind` applies to the next request, `kind*N` to the next N, `kind*` to all of them;
  after the plan is used up the symbol is served normally. `TRANSIENT` maps each transient
  fault to the handler that answers its request; shapes are read while building the chart.
Every request is logged (arrival time, symbol, status, headers) for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from ingest.simulate import MarketData, session_open_epoch
from stockml.defaults import EXCHANGE_TZ_NAME

TOO_MANY = b"Edge: Too Many Requests"


# ---- faults ---------------------------------------------------------------------------


@dataclass
class Call:
    """One request being answered: what a fault handler needs to know and to log."""

    server: YahooServer
    request: web.Request
    symbol: str
    at: float  # time.monotonic() on arrival
    fault: str | None
    shapes: set[str]

    def record(self, status: int) -> None:
        self.server.record(self.request, self.symbol, status, self.fault, self.at)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
Spoiler = Callable[[Call, bytes], Awaitable[web.StreamResponse]]


async def serve(call: Call, spoil: Spoiler | None = None) -> web.StreamResponse:
    """The normal answer; a 200 is handed to `spoil` when a fault spoils it."""
    status, body = call.server.chart_body(call.symbol, call.request.query, call.shapes)
    call.record(status)
    if spoil is not None and status == 200:
        return await spoil(call, body)
    return web.Response(status=status, body=body, content_type="application/json")


def _refuse(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    """A fault answered with an error page instead of the chart."""

    async def handler(call: Call) -> web.StreamResponse:
        call.record(status)
        return web.Response(status=status, body=body, content_type="text/html", headers=headers)

    return handler


def _spoiling(spoil: Spoiler) -> Handler:
    """A fault that spoils the normal answer (a 404 or 400 is served as it is)."""
    return lambda call: serve(call, spoil)


async def _hang(call: Call) -> web.StreamResponse:
    call.record(0)
    await asyncio.sleep(3600)  # until the client gives up (handler_cancellation)
    return await serve(call)


async def _chart_null(call: Call, body: bytes) -> web.StreamResponse:
    return web.Response(status=200, body=b'{"chart": null}', content_type="application/json")


async def _truncated(call: Call, body: bytes) -> web.StreamResponse:
    cut = body[: max(len(body) // 2, 1)]
    return web.Response(status=200, body=cut, content_type="application/json")


async def _html(call: Call, body: bytes) -> web.StreamResponse:
    page = b"<!doctype html><html>Yahoo</html>"
    return web.Response(status=200, body=page, content_type="text/html")


async def _streaming(call: Call, body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(call.request)
    return response


async def _reset(call: Call, body: bytes) -> web.StreamResponse:
    # Headers and part of the body, then a TCP reset: the connection dies mid-answer.
    # (A reset before any byte would be re-sent silently by libcurl and aiohttp on
    # a reused connection; mid-body, every client must see the failure.)
    response = await _streaming(call, body)
    await response.write(body[: len(body) // 3])
    await asyncio.sleep(0.01)
    transport = call.request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.close()
    return response


async def _drip(call: Call, body: bytes) -> web.StreamResponse:
    response = await _streaming(call, body)
    for i in range(len(body)):
        await response.write(body[i : i + 1])
        await asyncio.sleep(call.server.drip_interval)
    return response


TOO_MANY_PLAIN = b"Too Many Requests"
# Transient faults, one request each: name -> how that request is answered.
TRANSIENT: dict[str, Handler] = {
    "429": _refuse(429, TOO_MANY_PLAIN),
    # a 429 that says when to come back, as Yahoo rarely does
    "429ra": _refuse(429, TOO_MANY_PLAIN, {"Retry-After": "1"}),
    "hang": _hang,
    "drip": _spoiling(_drip),
    "500": _refuse(500, b"<html><body>Internal error</body></html>"),
    "chart_null": _spoiling(_chart_null),
    "reset": _spoiling(_reset),
    "truncated": _spoiling(_truncated),
    "html": _spoiling(_html),
}
# Shapes of the data, in force while queued: read by YahooServer.chart_body.
SHAPES = ("nulls", "dup_last", "unknown", "empty", "no_adjclose")
FAULT_KINDS = (*TRANSIENT, *SHAPES)


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
                kind, star, count = token.partition("*")
                n = -1 if star and count == "" else int(count or 1)
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
        """Queue `kind` for the next `count` requests (-1: all); an unknown kind is refused
        here, when the plan is made, not when a request meets it."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
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
        meta: dict[str, dict] | None = None,
    ) -> None:
        self.data = data
        # Per-symbol meta entries over the default US equity's (e.g. BTC-USD's zone UTC
        # and instrumentType CRYPTOCURRENCY).
        self.meta = meta or {}
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

    def record(
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
            self.record(request, symbol, 429, "blocked", at)
            return web.Response(status=429, body=TOO_MANY, content_type="text/html")
        if self._over_limit(at):
            self.record(request, symbol, 429, "rate_limit", at)
            return web.Response(status=429, body=TOO_MANY, content_type="text/html")
        fault, shapes = self.faults.take(symbol)
        if self.latency:
            await asyncio.sleep(self.latency)
        call = Call(self, request, symbol, at, fault, shapes)
        return await (TRANSIENT[fault](call) if fault else serve(call))

    def chart_body(self, symbol: str, query: Any, shapes: set[str]) -> tuple[int, bytes]:
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
        meta = _meta(symbol, stamps[0] if len(stamps) else 0) | self.meta.get(symbol, {})
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
        adjclose = [{}] if "no_adjclose" in shapes else [{"adjclose": adj}]
        result = {
            "meta": meta,
            "timestamp": ts,
            "indicators": {"quote": [cols], "adjclose": adjclose},
        }
        if events:
            result["events"] = events
        return 200, orjson.dumps({"chart": {"result": [result], "error": None}})

    def _stamp_of(self, symbol: str, day: np.datetime64) -> int:
        series = self.data.series[symbol]
        i = int(np.searchsorted(series.dates, day))
        if i < len(series.dates) and series.dates[i] == day:
            return int(self.data.stamps(symbol)[i])
        return int(session_open_epoch(np.array([day]))[0])


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
        "exchangeTimezoneName": EXCHANGE_TZ_NAME,
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
