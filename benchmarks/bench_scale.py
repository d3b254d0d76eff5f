"""Features, context + labels at market scale: does the cost per row stay flat as the
universe grows?

For each size N (default 500, 1,000, 2,000, 5,000 simulated symbols x 20 years, ~5,000 bars
each) a fresh store gets the first N symbols' prices, then a child process runs the real
refresh (`refresh_features`, `refresh_context`, then `refresh_labels` for swing) under
`--memory-limit`, in chunks sized to it. Printed per size: rows, wall seconds, rows/s, wall and CPU
seconds per million rows (CPU: all threads of the refresh, less sensitive to other load on
the machine), chunks, and the child's peak RSS (its own VmHWM: `os.wait4`'s ru_maxrss
would carry over the exec the RSS of this parent, which built the market).
The baseline is the smallest size, measured in the same run: the ratio largest/smallest
of seconds per million rows must not grow (linear cost).

Prices are simulated straight into the store (`ingest.simulated.store_simulated`, the
ingest writer without HTTP) once for the largest size; each size copies its first N
symbols. HTTP ingest is timed separately on `--http-symbols` of the same market against
the fixture server (no client rate limit: the server's own rate), and extrapolated.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 500,1000,2000,5000] [--years 20]
        [--memory-limit 6G] [--http-symbols 200] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AS_OF = date(2026, 11, 27)
SEED = 7


def child(db: Path, memory_limit: str | None) -> None:
    """The measured process: refresh features, context and labels of `db`, print a JSON
    line."""
    from backtest.labels import PROFILES, refresh_labels
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from stockml import store
    from stockml.logs import configure_logging
    from stockml.memory import own_peak_rss

    configure_logging(db.with_suffix(".log"))
    warm_kernels(db)  # loading the kernels from Numba's cache (~2 s) is not per-row cost
    con = store.connect(db)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        feats = refresh_features(con, progress=False, memory_limit=memory_limit)
        middle = time.perf_counter()
        context = refresh_context(con, progress=False, memory_limit=memory_limit)
        after_context = time.perf_counter()
        labels = refresh_labels(con, PROFILES["swing"], progress=False, memory_limit=memory_limit)
        ended, cpu = time.perf_counter(), time.process_time() - cpu
    finally:
        con.close()
    print(
        json.dumps(
            {
                "rows": feats["rows"],
                "label_rows": labels["rows"],
                "features_s": middle - started,
                "context_s": after_context - middle,
                "labels_s": ended - after_context,
                "cpu_s": cpu,
                "feature_chunks": feats["chunks"],
                "context_chunks": context["chunks"],
                "label_chunks": labels["chunks"],
                "peak_rss": own_peak_rss(),
            }
        )
    )


def warm_kernels(master: Path) -> None:
    """Compile (or load) the Numba kernels once, before any measured child: a cold cache
    would otherwise land in the smallest size, the baseline."""
    from backtest.labels import PROFILES, compute_labels
    from features.compute import compute_features
    from stockml import store

    con = store.connect(master)
    try:
        prices = store.read_prices(con, ["S00001"])
    finally:
        con.close()
    compute_features(prices)
    compute_labels(prices, PROFILES["swing"])


def build_master(path: Path, n: int, years: float) -> tuple[int, float]:
    from ingest.simulated import history_start, scale_listings, store_simulated
    from stockml import store

    con = store.connect(path)
    try:
        started = time.perf_counter()
        bars = store_simulated(
            con, scale_listings(n), AS_OF, history_start(AS_OF, years), SEED, progress=True
        )
        return bars, time.perf_counter() - started
    finally:
        con.close()


def copy_first(master: Path, target: Path, n: int) -> None:
    """A fresh store holding the first `n` symbols of `master` (prices and ingest status)."""
    from ingest.simulated import scale_listings
    from stockml import store

    symbols = [s for s, _, _ in scale_listings(n)]
    con = store.connect(target)
    try:
        con.execute(f"ATTACH '{master}' AS master (READ_ONLY)")
        for table in ("symbols", "ingest_status", "prices"):
            order = " ORDER BY symbol, date" if table == "prices" else ""
            con.execute(
                f"INSERT INTO {table} SELECT * FROM master.{table} "
                f"WHERE symbol IN (SELECT unnest(?)){order}",
                [symbols],
            )
        con.execute("DETACH master")
    finally:
        con.close()


def measure(db: Path, memory_limit: str | None) -> dict:
    """Run `child` in its own process; its figures plus the kernel's rusage of it."""
    cmd = [sys.executable, __file__, "--child", str(db)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    _, status, _ = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"child failed ({proc.returncode}) on {db}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures.update(process_s=wall)
    return figures


def http_ingest(n: int, years: float) -> tuple[int, int, float]:
    """Ingest the first `n` symbols of the same market through the fixture server."""
    from ingest.policy import FetchPolicy
    from ingest.run import IngestRequest, run_ingest
    from ingest.server import MarketData, ServerThread, YahooServer
    from ingest.simulated import history_start, scale_listings

    listings = scale_listings(n)
    start = history_start(AS_OF, years)
    market = MarketData.from_simulator(listings, AS_OF, SEED, start)
    db = Path(tempfile.mkdtemp(prefix="bench_scale_http_")) / "http.duckdb"
    try:
        with ServerThread(YahooServer(market)) as server:
            policy = FetchPolicy(base_url=server.base_url, rate=math.inf, concurrency=8, timeout=60)
            started = time.perf_counter()
            result = run_ingest(
                IngestRequest([s for s, _, _ in listings], start, AS_OF, db, policy, progress=False)
            )
            wall = time.perf_counter() - started
        rows = sum(r.rows for r in result.results.values())
        return n, rows, wall
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000,5000")
    parser.add_argument("--years", type=float, default=20.0)
    parser.add_argument("--memory-limit", default=None, help="e.g. 6G; default a quarter of RAM")
    parser.add_argument("--http-symbols", type=int, default=200, help="0 skips the HTTP part")
    parser.add_argument("--work", type=Path, default=None, help="folder for the stores")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.memory_limit)
        return

    from stockml.logs import configure_logging
    from stockml.memory import MemoryBudget, physical_memory

    sizes = sorted(int(s) for s in args.sizes.split(","))
    budget = MemoryBudget.of(args.memory_limit)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    configure_logging(work / "bench_scale.log")
    print(
        f"bench_scale: sizes {sizes} x {args.years:g} years, memory limit {budget.describe()} "
        f"(RAM {physical_memory() / 2**30:.1f} GiB, {os.cpu_count()} cores), work {work}",
        flush=True,
    )
    master = work / "master.duckdb"
    if master.exists():
        master.unlink()
    bars, seconds = build_master(master, sizes[-1], args.years)
    warm_kernels(master)
    print(
        f"simulate + store (no HTTP): {sizes[-1]:,} symbols, {bars:,} bars in {seconds:.0f} s "
        f"({bars / seconds:,.0f} bars/s)",
        flush=True,
    )
    if args.http_symbols:
        n, rows, wall = http_ingest(args.http_symbols, args.years)
        print(
            f"HTTP ingest (fixture server, no client rate limit): {n} symbols, {rows:,} bars "
            f"in {wall:.1f} s = {n / wall:.1f} symbols/s, {rows / wall:,.0f} bars/s; "
            f"{sizes[-1]:,} symbols would take ~{sizes[-1] / (n / wall) / 60:.1f} min",
            flush=True,
        )
    results = []
    header = (
        f"{'symbols':>8} {'rows':>12} {'feat s':>8} {'ctx s':>7} {'label s':>8} {'total s':>8} "
        f"{'rows/s':>9} {'s/M rows':>9} {'CPU s/M':>8} {'chunks f/c/l':>12} {'peak RSS':>9}"
    )
    print(header, flush=True)
    for n in sizes:
        db = work / f"scale_{n}.duckdb"
        if db.exists():
            db.unlink()
        copy_first(master, db, n)
        f = measure(db, args.memory_limit)
        total = f["features_s"] + f["context_s"] + f["labels_s"]
        f.update(symbols=n, total_s=total, s_per_m=total / f["rows"] * 1e6)
        f["cpu_per_m"] = f["cpu_s"] / f["rows"] * 1e6
        results.append(f)
        print(
            f"{n:>8,} {f['rows']:>12,} {f['features_s']:>8.1f} {f['context_s']:>7.1f} "
            f"{f['labels_s']:>8.1f} "
            f"{total:>8.1f} {f['rows'] / total:>9,.0f} {f['s_per_m']:>9.2f} "
            f"{f['cpu_per_m']:>8.2f} "
            f"{f['feature_chunks']:>5}/{f['context_chunks']}/{f['label_chunks']:<4} "
            f"{f['peak_rss'] / 2**30:>7.2f} G",
            flush=True,
        )
        db.unlink()
        db.with_suffix(".log").unlink(missing_ok=True)
        db.with_suffix(".duckdb.wal").unlink(missing_ok=True)
    small, large = results[0], results[-1]
    print(
        f"slope: seconds per million rows, {large['symbols']:,} / {small['symbols']:,} symbols = "
        f"{large['s_per_m'] / small['s_per_m']:.2f} (wall), "
        f"{large['cpu_per_m'] / small['cpu_per_m']:.2f} (CPU); 1.00 is linear"
    )
    print(
        f"peak RSS at {large['symbols']:,} symbols: {large['peak_rss'] / 2**30:.2f} GiB "
        f"(limit {budget.describe()}; goal < 8 GB)"
    )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
