"""Benchmark: time to render /ml-signals for 500 symbols through the real `stockml serve`.

Builds a store of N symbols (default 500) with five years of seeded random-walk bars,
names and sectors, and one training run's signals for every symbol, written through the
store module's own functions (`record_training_run`, `replace_signals`); starts
`stockml serve` on it in a subprocess and times, with one keep-alive HTTP client and
requests interleaved so both see the same machine load:

    page      GET /ml-signals (the HTML table of N rows; the target: p95 <= 200 ms)
              (the first request, which copies the store and runs the queries, is
              reported apart: later ones render from the snapshot's memo)
    api       GET /api/signals (the same query, JSON instead of a template)
    static    GET /static/app.js (a static file: the server's and client's floor)

Prints p50/p95 of each and the ratios of the page to the baselines. `--check` first
verifies the page lists N rows. Usage:

    .venv/bin/python benchmarks/bench_serve.py [--symbols 500] [--requests 200] [--check]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stockml import store  # noqa: E402
from stockml.store.connection import insert_frame  # noqa: E402

SECTORS = ["Energy", "Financials", "Health Care", "Industrials", "Information Technology"]
DAYS = 1260  # five years of trading days


def build_store(db: Path, n_symbols: int, seed: int = 7) -> str:
    """Prices, listings, one training run and its signals for `n_symbols`; the run id."""
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    days = np.array([date(2021, 1, 4) + timedelta(days=int(d)) for d in np.arange(DAYS * 7 // 5)])
    days = np.array([d for d in days if d.weekday() < 5][:DAYS], dtype="datetime64[D]")
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, (n_symbols, DAYS)), axis=1))
    prices = pl.DataFrame(
        {
            "symbol": np.repeat(symbols, DAYS),
            "date": np.tile(days, n_symbols),
            "open": closes.ravel() * 0.999,
            "high": closes.ravel() * 1.01,
            "low": closes.ravel() * 0.99,
            "close": closes.ravel(),
            "adjclose": closes.ravel(),
            "volume": rng.integers(10**5, 10**7, n_symbols * DAYS),
        }
    )
    con = store.connect(db)
    try:
        insert_frame(con, prices, "INSERT INTO prices SELECT * FROM _new")
        store.upsert_symbols(
            con,
            [(s, f"Company {s} Inc.", SECTORS[i % len(SECTORS)]) for i, s in enumerate(symbols)],
        )
        run_id = "bench000000000001"
        info = {
            "train_start": days[0].item(),
            "train_end": days[-300].item(),
            "test_start": days[-280].item(),
            "test_end": days[-15].item(),
            "n_train": 400_000,
            "n_test": 100_000,
        }
        store.record_training_run(
            con, run_id, "swing", info, "f" * 16, "bench", "{}", "runs/bench", []
        )
        p = rng.dirichlet([2, 3, 2], n_symbols)
        signal = np.where(p[:, 2] > 0.5, "BUY CALL", np.where(p[:, 0] > 0.5, "BUY PUT", "HOLD"))
        frame = pl.DataFrame(
            {
                "run_id": [run_id] * n_symbols,
                "symbol": symbols,
                "date": [days[-1].item()] * n_symbols,
                "signal": signal,
                "p_win": p[:, 2],
                "p_timeout": p[:, 1],
                "p_loss": p[:, 0],
                "threshold": np.where(signal == "HOLD", np.nan, 0.5),
                "profile": ["swing"] * n_symbols,
            }
        )
        store.replace_signals(con, run_id, frame)
    finally:
        con.close()
    return run_id


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        db = Path(tmp) / "s.duckdb"
        started = time.perf_counter()
        build_store(db, args.symbols)
        db_bytes = db.stat().st_size
        print(
            f"store: {args.symbols} symbols x {DAYS} bars, built in "
            f"{time.perf_counter() - started:.1f} s"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "stockml.cli", "serve", "--db", str(db), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            base = re.search(r"(http://\S+?)/ml-signals", server.stdout.readline()).group(1)
            paths = {"page": "/ml-signals", "api": "/api/signals", "static": "/static/app.js"}
            with httpx.Client(base_url=base, timeout=60) as client:
                t0 = time.perf_counter()
                first = client.get("/ml-signals").text
                cold = time.perf_counter() - t0
                if args.check:
                    rows = first.count('class="signal-row')
                    assert rows == args.symbols, f"page lists {rows} rows"
                    print(f"check: the page lists {rows} rows")
                for _ in range(10):  # warm-up: imports, snapshot copy, template compile
                    for path in paths.values():
                        client.get(path).raise_for_status()
                times: dict[str, list[float]] = {k: [] for k in paths}
                for _ in range(args.requests):
                    for name, path in paths.items():
                        t0 = time.perf_counter()
                        client.get(path).raise_for_status()
                        times[name].append(time.perf_counter() - t0)
        finally:
            server.terminate()
            server.wait(timeout=20)
    for name, values in times.items():
        print(
            f"{name:7s} {paths[name]:15s} p50 {percentile(values, 50):7.1f} ms   "
            f"p95 {percentile(values, 95):7.1f} ms   ({len(values)} requests)"
        )
    print(
        f"first /ml-signals after start (snapshot copy of {db_bytes / 2**20:.0f} MiB, queries, "
        f"template compile): {cold * 1000:.0f} ms"
    )
    page = times["page"]
    for name in ("api", "static"):
        print(
            f"page / {name}: median x{np.median(page) / np.median(times[name]):.1f}, "
            f"p95 x{np.percentile(page, 95) / np.percentile(times[name], 95):.1f}"
        )
    verdict = "meets" if percentile(page, 95) <= 200 else "MISSES"
    print(f"/ml-signals p95 {percentile(page, 95):.1f} ms {verdict} the 200 ms target")


if __name__ == "__main__":
    main()
