"""Rate cap, circuit breaker, automatic transport switch and proxying, against real servers."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from pathlib import Path

import pytest

from ingest.server import MarketData
from stockml.errors import BlockedError
from tests.ingest_support import FAULTY, STILL, ingest, load_market, serving, table

SYMBOLS = STILL + FAULTY


@pytest.fixture(scope="module")
def market(sp500_parquet) -> MarketData:
    return load_market(sp500_parquet, SYMBOLS)


def max_in_one_second(arrivals: list[float]) -> int:
    arrivals = sorted(arrivals)
    best, j = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("transport", ["aiohttp", "curl"])
def test_rate_cap_holds_in_every_one_second_window(market, tmp_path, transport):
    """No one-second window of arrivals at the server holds more than --rate requests,
    and the run still uses at least 90% of the allowed rate."""
    rate = 5.0
    with serving(market, rate_limit=rate) as server:
        result = ingest(
            tmp_path / "s.duckdb", server.base_url, SYMBOLS, rate=rate, transport=transport
        )
        arrivals = [r.at for r in server.server.log]
        refused = [r for r in server.server.log if r.fault == "rate_limit"]
    assert result.count("ok") == len(SYMBOLS)
    assert max_in_one_second(arrivals) <= rate
    assert not refused, "the server's own limiter had to refuse requests"
    span = max(arrivals) - min(arrivals)
    achieved = (len(arrivals) - 1) / span  # N requests span N-1 intervals
    assert achieved >= 0.9 * rate, f"achieved {achieved:.2f}/s of {rate}/s"


def test_breaker_stops_a_blocked_run_and_keeps_progress(market, tmp_path):
    """After several consecutive 429s the run stops (exit 5) and keeps what it stored."""
    blocked = SYMBOLS[2:]
    plan = ";".join(f"{s}=429*" for s in blocked)
    db = tmp_path / "s.duckdb"
    with serving(market, faults=plan) as server:
        with pytest.raises(BlockedError) as stop:
            ingest(db, server.base_url, SYMBOLS, concurrency=1, transport="aiohttp", retries=5)
        requests = len(server.server.log)
    assert stop.value.exit_code == 5
    assert "Yahoo is blocking" in str(stop.value)
    stored = set(table(db, "SELECT symbol FROM ingest_status WHERE status='ok'")["symbol"])
    assert stored == set(SYMBOLS[:2])
    assert requests <= 2 + 8 + 1  # two good symbols, the breaker's 8, one in flight


def test_auto_switches_once_under_block_plain_and_remembers(market, tmp_path):
    """Blocked plain client: auto switches to curl once, completes every symbol within the
    rate, and the next run starts with curl directly."""
    db = tmp_path / "s.duckdb"
    rate = 10.0
    with serving(market, block_plain=True) as server:
        result = ingest(db, server.base_url, SYMBOLS, rate=rate, transport="auto")
        arrivals = [r.at for r in server.server.log]
        first_run = len(server.server.log)
        assert result.transports == ["aiohttp", "curl"]
        assert result.count("ok") == len(SYMBOLS)
        assert max_in_one_second(arrivals) <= rate
        used = table(db, "SELECT DISTINCT transport FROM ingest_status")["transport"].to_list()
        assert used == ["curl"]
        again = ingest(db, server.base_url, STILL, end=date(2021, 4, 20), transport="auto")
        second = server.server.log[first_run:]
    assert again.transports == ["curl"]
    assert second and all(r.client_hints for r in second)


def test_both_transports_blocked_names_both_and_suggests_proxy(market, tmp_path):
    """When both transports get only 429s the breaker stops the run and says what was tried."""
    plan = ";".join(f"{s}=429*" for s in SYMBOLS)
    with serving(market, faults=plan) as server:
        with pytest.raises(BlockedError) as stop:
            ingest(tmp_path / "s.duckdb", server.base_url, SYMBOLS, transport="auto")
        requests = len(server.server.log)
    message = str(stop.value)
    assert "aiohttp and curl" in message and "--proxy" in message
    assert requests <= 3 + 8 + 2 * 8  # switch threshold, breaker, in flight on both


class ForwardProxy:
    """A minimal HTTP forward proxy on loopback (absolute-form requests), counting requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            assert target.startswith("http://"), target
            hostport, _, path = target[len("http://") :].partition("/")
            host, _, port = hostport.partition(":")
            self.requests += 1
            up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
            headers = [
                h for h in lines[1:] if h and not h.lower().startswith(("connection", "proxy-"))
            ]
            request = f"{method} /{path} {version}\r\n" + "\r\n".join(headers)
            up_writer.write(request.encode("latin-1") + b"\r\nConnection: close\r\n\r\n")
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
            up_writer.close()
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.mark.parametrize("transport", ["aiohttp", "curl"])
def test_proxy_carries_every_request(market, tmp_path, transport):
    """With --proxy, every chart request goes through the proxy and the run completes."""
    with serving(market) as server, ForwardProxy() as proxy:
        result = ingest(
            tmp_path / "s.duckdb",
            server.base_url,
            STILL,
            transport=transport,
            proxy=f"http://127.0.0.1:{proxy.port}",
        )
        assert result.count("ok") == len(STILL)
        assert proxy.requests == len(server.server.log) == len(STILL)


def test_proxy_from_the_environment(market, tmp_path):
    """Without --proxy, the CLI honours HTTP(S)_PROXY for the base URL's scheme."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    with serving(market) as server, ForwardProxy() as proxy:
        env = {**os.environ, "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"}
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "stockml.cli", "ingest", "--symbols", ",".join(STILL[:2])),
                *("--start", "2021-01-04", "--end", "2021-03-31", "--rate", "50", "--quiet"),
                *("--base-url", server.base_url, "--db", str(tmp_path / "s.duckdb")),
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proxy.requests == len(server.server.log) == 2


def test_retry_after_is_honoured(market, tmp_path):
    """A 429 with Retry-After: 1 is retried no sooner than a second later, even when the
    backoff alone would retry at once."""
    with serving(market, faults="ADBE=429ra") as server:
        result = ingest(tmp_path / "s.duckdb", server.base_url, ["ADBE"], backoff_base=0.01)
        arrivals = [r.at for r in server.server.log]
    assert result.count("ok") == 1 and len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 1.0
