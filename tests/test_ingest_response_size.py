"""A bounded answer per request, decoded, on both transports (issue 27, fault 4).

A 1 MB gzip body that inflates to 1 GB drove one symbol's fetch to 2.3 GB of memory
(aiohttp and curl alike); a larger one ended in MemoryError or a segfault. A proxy, a
captive portal or a wrong `--base-url` can send that. Here a real HTTP server on loopback
answers every chart request with such a body (`Content-Encoding: gzip`): the fetch stops
at `FetchPolicy.max_response_bytes` (`--max-response-mb`), the symbol fails with that
reason and is not retried, and the process stays small.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from aiohttp import web

from tests.ingest_support import START, table

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20
INFLATED = 512 * MB  # what the bomb decodes to

pytestmark = pytest.mark.slow


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of `size` spaces: about 1/1000 of it on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MB
    parts = [packer.compress(block) for _ in range(size // MB)]
    return b"".join([*parts, packer.flush()])


class BombServer:
    """Answers every request with the same gzip body, counting requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=self.body, headers=headers)

    def __enter__(self) -> BombServer:
        import asyncio

        self._loop = asyncio.new_event_loop()

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._answer)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def bomb():
    with BombServer(gzip_bomb(INFLATED)) as server:
        yield server


FETCH = """
import asyncio, sys
from ingest.client import ChartClient, SymbolFailed
from ingest.policy import FetchPolicy
from stockml.logs import configure_logging

configure_logging(None)  # structlog's default would print each request event to stdout


async def main(base_url, transport, limit):
    policy = FetchPolicy(base_url=base_url, rate=100.0, timeout=120.0, retries=2,
                         backoff_base=0.01, transport=transport, max_response_bytes=limit)
    client = ChartClient(policy, transport)
    try:
        await client.fetch("AAPL", 1577836800, 1609459200)
        print("fetched")
    except SymbolFailed as exc:
        print("failed:", exc)
    finally:
        await client.close()
    print("requests:", client.stats.requests)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a large pytest
# process would report the parent's peak.
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print("maxrss_mb:", int(peak) // 1024)
"""


@pytest.mark.parametrize("transport", ["aiohttp", "curl"])
def test_a_gzip_bomb_fails_the_symbol_at_the_limit_with_little_memory(bomb, transport):
    """A 0.5 MB gzip answer inflating to 512 MiB, with an 8 MiB limit: the symbol fails
    with the reason after one request (not retried), and the fetching process never
    holds more than a few hundred MB (it held the whole inflated body before)."""
    done = subprocess.run(
        [sys.executable, "-c", FETCH, bomb.base_url, transport, str(8 * MB)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["failed"].startswith("the answer is larger than 8 MiB once decoded"), lines
    assert lines["requests"] == "1"
    assert int(lines["maxrss_mb"]) < 400, lines


def test_ingest_names_the_limit_as_the_symbols_reason(bomb, tmp_path):
    """`stockml ingest --max-response-mb 4` against the bomb: exit 4, the symbol failed
    with the reason in `ingest_status`, nothing stored."""
    db = tmp_path / "s.duckdb"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stockml.cli",
            "ingest",
            "--db",
            str(db),
            "--symbols",
            "AAPL",
            "--start",
            START.isoformat(),
            "--end",
            "2021-03-31",
            "--base-url",
            bomb.base_url,
            "--max-response-mb",
            "4",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 4, done.stderr[-3000:]
    status = table(db, "SELECT symbol, status, error FROM ingest_status")
    assert status["status"].to_list() == ["failed"]
    assert status["error"][0].startswith("the answer is larger than 4 MiB once decoded")
    assert table(db, "SELECT count(*) AS n FROM prices")["n"][0] == 0
