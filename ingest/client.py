"""One chart fetch under the run's throttle, in-flight cap, hard deadline and retry policy
(the knobs and their defaults: `ingest.policy.FetchPolicy`).

Everything here is shared by both transports and does not know which one runs:
- a semaphore caps requests in flight (`concurrency`); a pacer spaces request starts
  evenly and asyncio-throttle caps them at `rate` in any one-second window, retries included;
- `asyncio.timeout` is a hard total deadline per request: connect, headers and body;
- 429, 5xx, timeouts, connection errors and unparseable bodies are retried with
  exponential backoff and jitter, honouring Retry-After; 404 "No data found" is not;
- a circuit breaker stops the run after `breaker_after` consecutive 429s;
- with transport `auto`, when the run's first answers are all Yahoo's block signature
  (429 text/html), the client switches once to the other transport.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import structlog
from asyncio_throttle import Throttler

from ingest.policy import YAHOO_BASE_URL, FetchPolicy
from ingest.transport import (
    TRANSPORTS,
    ConnectionFailed,
    HttpResponse,
    RequestTimeout,
    ResponseTooLarge,
    Transport,
    TransportError,
    make_transport,
)
from ingest.yahoo import (
    Chart,
    ChartError,
    ChartNotFound,
    ChartUnparseable,
    classify_error,
    is_no_data_in_window,
    parse_chart,
)

# Two layers keep request starts within `rate` per second:
# - a pacer spaces starts evenly, (1/rate) x SPACING_MARGIN apart, on a drift-free schedule
#   (a late wake-up does not push every later start back), which is what Yahoo likes best;
# - asyncio-throttle is the hard cap: never more than `rate` starts in any window of
#   WINDOW seconds, whatever the pacer's timing.
# The margins absorb the scheduling jitter between a start here and its arrival at the server.
SPACING_MARGIN = 1.05
WINDOW = 1.05


class SymbolFailed(Exception):
    """The symbol ends failed with this reason (retries exhausted or not retryable);
    `not_found` when Yahoo said it has no such symbol (404 'No data found')."""

    def __init__(self, reason: str, not_found: bool = False) -> None:
        super().__init__(reason)
        self.not_found = not_found


class BreakerOpen(Exception):
    """Yahoo is refusing us: the run must stop and keep its progress."""


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    timeouts: int = 0
    # Requests made (or tried) per symbol this run, retries included: ingest_status.attempts.
    attempts: Counter[str] = field(default_factory=Counter)
    retrying: set[str] = field(default_factory=set)
    in_flight: set[str] = field(default_factory=set)
    first_start: float | None = None  # time.monotonic() of the first and last request
    last_start: float | None = None

    @property
    def start_rate(self) -> float:
        """Requests started per second between the first and the last start."""
        if self.first_start is None or self.last_start is None or self.requests < 2:
            return 0.0
        return (self.requests - 1) / max(self.last_start - self.first_start, 1e-9)


def allowed_per_window(rate: float) -> int:
    """Whole requests a one-second window may hold at `rate` (at least one)."""
    return max(1, math.floor(rate + 1e-9))


def make_throttler(rate: float) -> Throttler | None:
    """The hard cap; None (unthrottled) for an infinite rate, which only benchmarks use."""
    if math.isinf(rate):
        return None
    if rate >= 1:
        return Throttler(rate_limit=allowed_per_window(rate), period=WINDOW, retry_interval=0.002)
    return Throttler(rate_limit=1, period=WINDOW / rate, retry_interval=0.01)


class Pacer:
    """Evenly spaced request starts, one caller at a time.

    Starts follow an ideal schedule one spacing apart, so a late wake-up does not push
    every later start back (which cost ~10% of the rate); the schedule may owe at most one
    slot, and two actual starts are never closer than MIN_GAP spacings, so catching up
    after a stall never becomes a burst.
    """

    MIN_GAP = 0.95

    def __init__(self, rate: float) -> None:
        if math.isinf(rate):
            self.spacing = 0.0
        else:
            per_second = allowed_per_window(rate) if rate >= 1 else rate
            self.spacing = SPACING_MARGIN / per_second
        self._ideal = 0.0
        self._last = -math.inf
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.spacing:
            return
        async with self._lock:
            now = time.monotonic()
            ideal = max(self._ideal, now - self.spacing)
            due = max(ideal, self._last + self.MIN_GAP * self.spacing)
            if due > now:
                await asyncio.sleep(due - now)
            self._last = time.monotonic()
            self._ideal = ideal + self.spacing


def is_block_signature(resp: HttpResponse) -> bool:
    return resp.status == 429 and "text/html" in resp.content_type


class ChartClient:
    """Fetches charts for one run; owns the transports, the throttle and the breaker."""

    def __init__(
        self,
        policy: FetchPolicy,
        first_transport: str,
        on_switch: Callable[[str, str], None] | None = None,
    ) -> None:
        if first_transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {first_transport!r}")
        self.policy = policy
        self.stats = ClientStats()
        self._auto = policy.transport == "auto"
        self._throttle = make_throttler(policy.rate)
        self._pacer = Pacer(policy.rate)
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._transport: Transport = make_transport(
            first_transport, policy.concurrency, policy.proxy, policy.max_response_bytes
        )
        self._retired: list[Transport] = []
        self._tried: list[str] = [first_transport]
        self._on_switch = on_switch
        self._consecutive_429 = 0
        self._blocks_before_answer = 0
        self._answered = False  # any non-block answer on the current transport
        self.worked: str | None = None  # the transport that got a 200 this run
        self._log = structlog.get_logger("ingest")

    @property
    def transport_name(self) -> str:
        return self._transport.name

    @property
    def transports_tried(self) -> list[str]:
        return list(self._tried)

    async def close(self) -> None:
        for transport in [self._transport, *self._retired]:
            await transport.close()

    def url_for(self, symbol: str) -> str:
        return f"{self.policy.base_url.rstrip('/')}/v8/finance/chart/{quote(symbol, safe='')}"

    async def fetch(self, symbol: str, period1: int, period2: int) -> Chart | None:
        """The chart for [period1, period2); None when Yahoo says the window holds no data
        (400 before the first trade). Each attempt is counted in `stats.attempts[symbol]`."""
        params = {
            "period1": str(period1),
            "period2": str(period2),
            "interval": "1d",
            "events": "div,splits",
            "includeAdjustedClose": "true",
        }
        url = self.url_for(symbol)
        last_error = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self.policy.retries + 1):
            if attempt:
                self.stats.retries += 1
                self.stats.retrying.add(symbol)
                await asyncio.sleep(self._backoff(attempt, retry_after))
                self.stats.retrying.discard(symbol)
            retry_after = None
            self.stats.attempts[symbol] += 1
            try:
                resp, transport = await self._request(symbol, url, params, attempt)
            except TransportError as exc:
                last_error = str(exc)
                continue
            except ResponseTooLarge as exc:
                raise SymbolFailed(str(exc)) from exc
            if resp.status == 200:
                try:
                    chart = parse_chart(resp.body, symbol, period2, period1)
                except ChartError as exc:
                    last_error = f"HTTP 200 but {exc}"
                    self._log.warning("unparseable", symbol=symbol, attempt=attempt, error=str(exc))
                    if exc.retryable:
                        continue
                    raise SymbolFailed(str(exc), isinstance(exc, ChartNotFound)) from exc
                self.worked = transport
                return chart
            if resp.status == 429:
                last_error = "HTTP 429 Too Many Requests (rate limited)"
                retry_after = _retry_after_seconds(resp)
                continue
            if is_no_data_in_window(resp.status, resp.body):
                return None
            error = classify_error(resp.status, resp.body)
            last_error = str(error)
            if not error.retryable:
                raise SymbolFailed(last_error, isinstance(error, ChartNotFound))
        raise SymbolFailed(f"{last_error} (after {self.policy.retries + 1} attempts)")

    async def _request(
        self, symbol: str, url: str, params: dict[str, str], attempt: int
    ) -> tuple[HttpResponse, str]:
        async with self._slots:
            await self._pacer.wait()
            if self._throttle is not None:
                await self._throttle.acquire()
            transport = self._transport
            self.stats.requests += 1
            self.stats.last_start = time.monotonic()
            if self.stats.first_start is None:
                self.stats.first_start = self.stats.last_start
            self.stats.in_flight.add(symbol)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.policy.timeout):
                    resp = await transport.get(url, params, self.policy.timeout)
            except (TimeoutError, RequestTimeout) as exc:
                # Our deadline (TimeoutError) or the transport's own, whichever fired first.
                self.stats.timeouts += 1
                self._log_request(symbol, attempt, transport.name, started, error="timeout")
                raise RequestTimeout(
                    f"timed out: no complete answer within {self.policy.timeout:g} s"
                ) from exc
            except (ConnectionFailed, ResponseTooLarge) as exc:
                self._log_request(symbol, attempt, transport.name, started, error=str(exc))
                raise
            finally:
                self.stats.in_flight.discard(symbol)
            self._log_request(symbol, attempt, transport.name, started, status=resp.status)
        self._observe(resp, transport)
        return resp, transport.name

    def _observe(self, resp: HttpResponse, transport: Transport) -> None:
        """Feed the breaker and the auto-switch with one answer."""
        if resp.status != 429:
            self._consecutive_429 = 0
            if transport is self._transport:
                self._answered = True
            return
        self.stats.throttled += 1
        if transport is not self._transport:
            return  # a late answer from the transport we already left
        self._consecutive_429 += 1
        if is_block_signature(resp) and not self._answered:
            self._blocks_before_answer += 1
        can_switch = self._auto and len(self._tried) == 1
        if can_switch and self._blocks_before_answer >= self.policy.switch_after:
            self._switch()
            return
        if self._consecutive_429 >= self.policy.breaker_after:
            tried = " and ".join(self._tried)
            hint = (
                "both transports were refused; try later or pass --proxy URL"
                if len(self._tried) > 1
                else "try later, lower --rate, or pass --transport/--proxy"
            )
            raise BreakerOpen(
                f"Yahoo is blocking requests: {self._consecutive_429} consecutive HTTP 429 "
                f"answers via {tried}; {hint}"
            )

    def _switch(self) -> None:
        old = self._transport.name
        new = next(t for t in TRANSPORTS if t != old)
        self._retired.append(self._transport)
        self._transport = make_transport(
            new, self.policy.concurrency, self.policy.proxy, self.policy.max_response_bytes
        )
        self._tried.append(new)
        self._consecutive_429 = 0
        self._blocks_before_answer = 0
        self._answered = False
        self._log.warning("transport_switch", old=old, new=new, reason="blocked (429 text/html)")
        if self._on_switch is not None:
            self._on_switch(old, new)

    def _backoff(self, attempt: int, last_retry_after: float | None) -> float:
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if last_retry_after is not None:
            delay = max(delay, min(last_retry_after, self.policy.backoff_cap))
        return delay

    def _log_request(
        self,
        symbol: str,
        attempt: int,
        transport: str,
        started: float,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        ms = round((time.perf_counter() - started) * 1000, 1)
        self._log.info(
            "request",
            symbol=symbol,
            attempt=attempt,
            transport=transport,
            status=status,
            error=error,
            ms=ms,
        )


def _retry_after_seconds(resp: HttpResponse) -> float | None:
    for key, value in resp.headers.items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


__all__ = [
    "YAHOO_BASE_URL",
    "BreakerOpen",
    "ChartClient",
    "ChartUnparseable",
    "FetchPolicy",
    "SymbolFailed",
]
