"""Benchmark: the real `stockml serve` answering one client and many at once, beside a baseline.

Two stores:
- a synthetic store of N symbols (default 500) with five years of seeded random-walk bars,
  names and sectors, and one training run's signals for every symbol, written through the
  store module's own functions (`record_training_run`, `replace_signals`);
- a trained store (`--trained-store`, e.g. the demo's `data/demo.duckdb`, scored by
  `stockml signals`; by default 12 real stocks of ../shared/data trained here with two
  models, as the web tests do), for the symbol page, whose "why" needs a real live model.

Each server is `python -m stockml.cli serve` in a subprocess, run from this checkout and,
with `--baseline DIR`, from another one (e.g. `git archive <commit> | tar -x -C DIR`), on
the same store files. Measured:

    single    one keep-alive client, 500-symbol store, requests interleaved across paths
              and servers: GET /ml-signals (target p95 <= 200 ms), /api/signals,
              /static/app.js (a static file: the floor)
    load      `--clients` concurrent clients (asyncio, one connection each) on the
              trained store for `--seconds` per round: /symbol/<each scored symbol in
              turn> with 20 clients (target p95 <= 300 ms), /static/app.js with 20 (the
              floor: what the machine and the client add), /ml-signals with 100;
              `--rounds` rounds alternate the servers, so both see the same machine load;
              req/s, p50/p95/p99 and errors per server (medians over rounds)

Prints each figure beside the baseline's and their ratio. `--check` first verifies the
500-symbol page lists 500 rows and the symbol page carries its explanation. Usage:

    .venv/bin/python benchmarks/bench_serve.py [--symbols 500] [--requests 200] [--check]
        [--trained-store data/demo.duckdb] [--baseline DIR] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stockml import store  # noqa: E402
from stockml.store.connection import insert_frame  # noqa: E402

SECTORS = ["Energy", "Financials", "Health Care", "Industrials", "Information Technology"]
DAYS = 1260  # five years of trading days
# (page, concurrent clients); a static file at 20 clients is the floor: the machine's and
# the client's own share of the tail, whatever the page does.
LOADS = [("symbol", 20), ("static", 20), ("ml-signals", 100)]
LOAD_PATHS = {"ml-signals": ["/ml-signals"], "static": ["/static/app.js"]}


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


def build_trained_store(db: Path) -> None:
    """12 real stocks (2017-2021, ../shared/data) trained with LightGBM and logistic
    regression over two windows in this process, and scored: the web tests' store."""
    from features.cache import configure_numba_cache

    configure_numba_cache()
    from stockml.logs import configure_logging
    from training.pipeline import Recipe, run_training
    from training.signals import latest_signals

    configure_logging(db.with_suffix(".log"))
    parquet = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"
    if not parquet.exists():
        sys.exit(f"no {parquet}: pass --trained-store (e.g. a `stockml demo` store)")
    bars = pl.read_parquet(parquet)
    symbols = bars["symbol"].unique().sort().to_list()[:12]
    bars = bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    con = store.connect(db)
    try:
        columns = ["symbol", "date", "open", "high", "low", "close", "adjclose", "volume"]
        insert_frame(con, bars.select(columns), "INSERT INTO prices SELECT * FROM _new")
    finally:
        con.close()
    result = run_training(
        db,
        "swing",
        progress=False,
        models=["lightgbm", "logistic"],
        windows=2,
        serial=True,
        recipe=Recipe(tune=False),
    )
    latest_signals(db, result.run_id)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


@contextmanager
def serving(db: Path, code: Path, tmp: Path):
    """`stockml serve --port 0` on `db`, run from the checkout `code`; its base URL."""
    env = {**os.environ, "TMPDIR": str(tmp), "NO_COLOR": "1"}
    tmp.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", "serve", "--db", str(db), "--port", "0"],
        cwd=code,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = server.stdout.readline()
        found = re.search(r"(http://\S+?)/ml-signals", line)
        if not found:
            raise SystemExit(f"{code}: serve printed {line!r}")
        yield found.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def single_client(bases: dict[str, str], requests: int, check: int | None) -> dict:
    """{server: {path name: [seconds]}} for one keep-alive client per server, the paths
    and the servers interleaved."""
    paths = {"page": "/ml-signals", "api": "/api/signals", "static": "/static/app.js"}
    clients = {name: httpx.Client(base_url=base, timeout=60) for name, base in bases.items()}
    times: dict[str, dict[str, list[float]]] = {n: {k: [] for k in paths} for n in bases}
    cold = {}
    try:
        for name, client in clients.items():
            t0 = time.perf_counter()
            first = client.get("/ml-signals").text
            cold[name] = time.perf_counter() - t0
            if check is not None:
                rows = first.count('class="signal-row')
                assert rows == check, f"{name}: the page lists {rows} rows"
                print(f"check ({name}): the page lists {rows} rows")
            for _ in range(10):  # warm-up: imports, snapshot copy, template compile
                for path in paths.values():
                    client.get(path).raise_for_status()
        for _ in range(requests):
            for name, client in clients.items():
                for key, path in paths.items():
                    t0 = time.perf_counter()
                    client.get(path).raise_for_status()
                    times[name][key].append(time.perf_counter() - t0)
    finally:
        for client in clients.values():
            client.close()
    return {"times": times, "cold": cold, "paths": paths}


async def load_round(base: str, paths: list[str], clients: int, seconds: float) -> dict:
    """`clients` concurrent clients, each GETting `paths` in turn (offset by client) for
    `seconds`; request latencies, count and errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = await client.get(paths[i % len(paths)])
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "rps": len(latencies) / elapsed, "errors": errors}


def symbol_paths(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        symbols = [
            r[0] for r in con.execute("SELECT DISTINCT symbol FROM signals ORDER BY 1").fetchall()
        ]
    finally:
        con.close()
    return [f"/symbol/{s}" for s in symbols]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--trained-store", type=Path, default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to compare")
    parser.add_argument("--seconds", type=float, default=10.0, help="per load round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    codes = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        db = tmp / "s.duckdb"
        started = time.perf_counter()
        build_store(db, args.symbols)
        db_bytes = db.stat().st_size
        print(
            f"store: {args.symbols} symbols x {DAYS} bars, built in "
            f"{time.perf_counter() - started:.1f} s"
        )
        trained = tmp / "trained" / "s.duckdb"
        trained.parent.mkdir()
        if args.trained_store:
            shutil.copy(args.trained_store, trained)
            source_runs = args.trained_store.resolve().parent / "runs"
            if source_runs.is_dir():
                shutil.copytree(source_runs, trained.parent / "runs")
        else:
            started = time.perf_counter()
            build_trained_store(trained)
            print(f"trained store built in {time.perf_counter() - started:.1f} s")
        symbols = symbol_paths(trained)
        print(f"trained store: {len(symbols)} scored symbols")

        with ExitStack() as stack:  # every server stopped at the end
            bases = {
                name: stack.enter_context(serving(db, code, tmp / f"tmp-{name}"))
                for name, code in codes.items()
            }
            single = single_client(bases, args.requests, args.symbols if args.check else None)
        with ExitStack() as stack:  # every server stopped at the end
            bases = {
                name: stack.enter_context(serving(trained, code, tmp / f"tmp2-{name}"))
                for name, code in codes.items()
            }
            for name, base in bases.items():  # warm-up: snapshot copy, model load, imports
                with httpx.Client(base_url=base, timeout=120) as client:
                    page = client.get(symbols[0]).text
                    for path in [*symbols[:3], "/ml-signals"]:
                        client.get(path).raise_for_status()
                    if args.check:
                        assert 'class="why"' in page, f"{name}: {symbols[0]} has no explanation"
                        print(f"check ({name}): {symbols[0]} carries its explanation")
            loads: dict = {(page, n): {name: [] for name in bases} for page, n in LOADS}
            for _ in range(args.rounds):
                for page, clients in LOADS:
                    paths = symbols if page == "symbol" else LOAD_PATHS[page]
                    for name, base in bases.items():
                        loads[page, clients][name].append(
                            asyncio.run(load_round(base, paths, clients, args.seconds))
                        )

    report_single(single, db_bytes)
    report_loads(loads, args)


def report_single(single: dict, db_bytes: int) -> None:
    times, paths = single["times"], single["paths"]
    print("\none client, 500-symbol store")
    for name, by_path in times.items():
        for key, values in by_path.items():
            print(
                f"  {name:8s} {key:7s} {paths[key]:15s} p50 {percentile(values, 50):7.1f} ms   "
                f"p95 {percentile(values, 95):7.1f} ms   ({len(values)} requests)"
            )
        print(
            f"  {name:8s} first /ml-signals after start (snapshot copy of "
            f"{db_bytes / 2**20:.0f} MiB, queries, template compile): "
            f"{single['cold'][name] * 1000:.0f} ms"
        )
        page = by_path["page"]
        verdict = "meets" if percentile(page, 95) <= 200 else "MISSES"
        print(
            f"  {name:8s} /ml-signals p95 {percentile(page, 95):.1f} ms {verdict} the 200 ms target"
        )
    if "baseline" in times:
        for key in paths:
            new, old = times["this"][key], times["baseline"][key]
            print(
                f"  this / baseline {key:7s}: p50 x{np.median(new) / np.median(old):.2f}, "
                f"p95 x{np.percentile(new, 95) / np.percentile(old, 95):.2f}"
            )


def report_loads(loads: dict, args) -> None:
    print(f"\nunder load, trained store ({args.rounds} rounds of {args.seconds:g} s per server)")
    for (page, clients), by_server in loads.items():
        figures = {}
        for name, rounds in by_server.items():
            lat = [x for r in rounds for x in r["latencies"]]
            rps = float(np.median([r["rps"] for r in rounds]))
            errors = sum(r["errors"] for r in rounds)
            figures[name] = (rps, percentile(lat, 50), percentile(lat, 95), percentile(lat, 99))
            print(
                f"  {name:8s} /{page:10s} {clients:3d} clients: {rps:7.1f} req/s   "
                f"p50 {figures[name][1]:7.1f} ms   p95 {figures[name][2]:7.1f} ms   "
                f"p99 {figures[name][3]:7.1f} ms   {errors} errors ({len(lat)} requests)"
            )
        if page == "symbol":
            p95 = figures["this"][2]
            verdict = "meets" if p95 <= 300 else "MISSES"
            print(
                f"  this     /symbol p95 {p95:.1f} ms {verdict} the 300 ms target "
                f"at {clients} clients"
            )
        if "baseline" in figures:
            new, old = figures["this"], figures["baseline"]
            print(
                f"  this / baseline /{page}: req/s x{new[0] / old[0]:.2f}, "
                f"p50 x{new[1] / old[1]:.2f}, p95 x{new[2] / old[2]:.2f}, "
                f"p99 x{new[3] / old[3]:.2f}"
            )


if __name__ == "__main__":
    main()
