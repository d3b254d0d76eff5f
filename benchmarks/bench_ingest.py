"""Ingest benchmark against the fixture server (run as its own process, on loopback).

(a) bounded run: the 353 shared symbols, 5 years each, server rate limit L, ~50 ms latency,
    5% of symbols with a transient fault: wall time, achieved rate / L, and wall time / the
    bound N/L + (retries+1)*timeout + 10 s.
(b) client overhead: no rate limit, no latency: symbols/s and rows/s parsed and stored, and
    client CPU per symbol, for both transports side by side (fetch+parse only, and with the
    DuckDB writes).

    .venv/bin/python benchmarks/bench_ingest.py [--rate 20] [--skip-bounded]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.client import ChartClient, FetchPolicy  # noqa: E402
from ingest.plan import WARMUP_CALENDAR_DAYS, ny_midnight  # noqa: E402
from ingest.run import IngestRequest, run_ingest  # noqa: E402
from stockml.errors import IngestIncomplete  # noqa: E402

SERVE = [sys.executable, "-m", "stockml.cli", "serve-yahoo"]
PARQUET = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"
END = date(2021, 4, 20)
FIVE_YEARS_FROM = END - timedelta(days=5 * 365)
START = FIVE_YEARS_FROM + timedelta(days=WARMUP_CALENDAR_DAYS)  # fetch window = 5 years


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*SERVE, "--source", str(PARQUET), "--port", str(self.port), *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert "serving" in self.proc.stdout.readline()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def symbols() -> list[str]:
    import polars as pl

    return pl.read_parquet(PARQUET, columns=["symbol"])["symbol"].unique().sort().to_list()


def bounded(syms: list[str], rate: float, timeout: float, retries: int) -> None:
    from ingest.server import FaultPlan

    # The server draws the same plan from the same seed: count the 429s it will send.
    plan = FaultPlan.random(syms, 0.05, 7)
    faulted_429 = sum(1 for q in plan.queues.values() for kind, _ in q if kind == "429")
    with Server("--rate-limit", str(rate), "--latency", "0.05", "--fault-rate", "0.05") as server:
        db = Path(tempfile.mkdtemp()) / "bench.duckdb"
        policy = FetchPolicy(
            base_url=server.url,
            rate=rate,
            concurrency=8,
            timeout=timeout,
            retries=retries,
            backoff_base=0.5,
            transport="aiohttp",
        )
        started = time.perf_counter()
        try:
            result = run_ingest(IngestRequest(syms, START, END, db, policy, progress=False))
        except IngestIncomplete as exc:
            print(f"  incomplete: {exc}")
            return
        wall = time.perf_counter() - started
    n = len(syms)
    bound = n / rate + (retries + 1) * timeout + 10
    achieved = result.start_rate
    print(f"(a) {n} symbols, 5 y each, L = {rate:g}/s, 50 ms latency, 5% faulted")
    print(
        f"    ok {result.count('ok')}/{n}, requests {result.requests} ({result.retries} retries, "
        f"{result.throttled} x 429 of which {faulted_429} planned, {result.timeouts} timeouts)"
    )
    print(f"    wall {wall:.1f} s; requests/wall {result.requests / wall:.2f}/s")
    print(f"    achieved rate (first to last start) {achieved:.2f}/s = {achieved / rate:.3f} x L")
    print(f"    bound N/L + (retries+1)*timeout + 10 = {bound:.1f} s")
    print(f"    wall / bound = {wall / bound:.3f}")


async def fetch_only(url: str, transport: str, syms: list[str]) -> tuple[float, float, int]:
    policy = FetchPolicy(
        base_url=url, rate=math.inf, concurrency=8, timeout=30, transport=transport
    )
    client = ChartClient(policy, transport)
    p1, p2 = ny_midnight(FIVE_YEARS_FROM), ny_midnight(END + timedelta(days=1))
    rows = 0

    async def one(symbol: str) -> None:
        nonlocal rows
        chart = await client.fetch(symbol, p1, p2)
        rows += chart.bars.height

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(s) for s in syms))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await client.close()
    return wall, cpu, rows


def overhead(syms: list[str]) -> None:
    print(f"(b) client overhead, {len(syms)} symbols x 5 y, no rate limit, no latency")
    with Server() as server:
        asyncio.run(fetch_only(server.url, "aiohttp", syms[:20]))  # warm-up: imports, caches
        figures = {}
        for transport in ("aiohttp", "curl"):
            wall, cpu, rows = asyncio.run(fetch_only(server.url, transport, syms))
            figures[transport] = (wall, cpu, rows)
            print(
                f"    fetch+parse  {transport:7s}: {len(syms) / wall:7.1f} symbols/s, "
                f"{rows / wall:10,.0f} rows/s, client CPU {cpu / len(syms) * 1000:.2f} ms/symbol"
            )
        a, c = figures["aiohttp"], figures["curl"]
        print(f"    curl / aiohttp CPU per symbol: {c[1] / a[1]:.2f}")
        for transport in ("aiohttp", "curl"):
            db = Path(tempfile.mkdtemp()) / "bench.duckdb"
            policy = FetchPolicy(
                base_url=server.url, rate=math.inf, concurrency=8, timeout=30, transport=transport
            )
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = run_ingest(IngestRequest(syms, START, END, db, policy, progress=False))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            rows = sum(r.rows for r in result.results.values())
            print(
                f"    + DuckDB     {transport:7s}: {len(syms) / wall:7.1f} symbols/s, "
                f"{rows / wall:10,.0f} rows/s stored, "
                f"client CPU {cpu / len(syms) * 1000:.2f} ms/symbol"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"    peak RSS of the client process: {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="L, requests/s")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--skip-bounded", action="store_true")
    args = parser.parse_args()
    if not PARQUET.exists():
        sys.exit(f"needs {PARQUET}")
    os.environ.setdefault("NO_COLOR", "1")
    from stockml.logs import configure_logging

    configure_logging(Path(tempfile.mkdtemp()) / "bench.log")
    syms = symbols()
    if not args.skip_bounded:
        bounded(syms, args.rate, args.timeout, args.retries)
    overhead(syms)


if __name__ == "__main__":
    main()
