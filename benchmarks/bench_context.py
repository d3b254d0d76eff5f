"""Context features in chunks against the whole universe in memory: peak memory and time.

`features/context_refresh.py` computes the market, sector and cross-sectional columns in
chunks through scratch tables (per-symbol series, per-day cross-sections, per-symbol
finish), so its memory follows `--memory-limit`, not the universe. The baseline is what it
replaced, measured side by side in the same run: `read_universe` + `context_frame` +
`replace_context`, the whole universe in one polars frame.

For each size N (simulated symbols x `--years`, default 20) a store gets the first N
symbols' prices and their 179 features (not measured); then each method runs in a child
process of its own on a copy of that store, and the child's own high-water mark (VmHWM,
`stockml.memory.own_peak_rss`: ru_maxrss would carry this parent's RSS over the exec) is
its peak RSS. Printed per size and method: rows, wall and CPU seconds, peak
RSS; then per size the ratios chunked / in memory. Both write the same table (tested in
tests/test_features_context.py).

    .venv/bin/python benchmarks/bench_context.py [--sizes 250,500,1000] [--years 20]
        [--memory-limit 6G] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

METHODS = ("in memory", "chunked")


def child(db: Path, method: str, memory_limit: str | None) -> None:
    """The measured process: compute and store the context of `db` one way."""
    from features.context import CONTEXT_COLUMNS, context_frame
    from features.context_refresh import context_version, read_universe, refresh_context
    from stockml import store

    con = store.connect(db)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        if method == "chunked":
            rows = refresh_context(con, progress=False, memory_limit=memory_limit)["rows"]
        else:
            store.ensure_context_table(con, CONTEXT_COLUMNS)
            frame = context_frame(*read_universe(con))
            store.replace_context(con, frame, context_version(con))
            rows = frame.height
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        con.close()
    from stockml.memory import own_peak_rss

    print(json.dumps({"rows": rows, "wall_s": wall, "cpu_s": cpu, "peak_rss": own_peak_rss()}))


def measure(db: Path, method: str, memory_limit: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(db), "--method", method]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    _, status, _ = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{method} child failed on {db}")
    return json.loads(out.strip().splitlines()[-1])


def with_features(master: Path, target: Path, n: int) -> None:
    from bench_scale import copy_first

    from features.compute import refresh_features
    from stockml import store

    copy_first(master, target, n)
    con = store.connect(target)
    try:
        refresh_features(con, progress=False)
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000")
    parser.add_argument("--years", type=float, default=20.0)
    parser.add_argument("--memory-limit", default=None, help="e.g. 6G; default a quarter of RAM")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, default="chunked", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.method, args.memory_limit)
        return

    from bench_scale import build_master

    from stockml.memory import MemoryBudget

    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_context_"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"bench_context: sizes {sizes} x {args.years:g} years, memory limit "
        f"{MemoryBudget.of(args.memory_limit).describe()}, {os.cpu_count()} cores",
        flush=True,
    )
    master = work / "master.duckdb"
    master.unlink(missing_ok=True)
    build_master(master, sizes[-1], args.years)
    print(f"{'symbols':>8} {'rows':>12} {'method':>10} {'wall s':>8} {'CPU s':>8} {'peak RSS':>9}")
    ratios = []
    for n in sizes:
        base = work / f"features_{n}.duckdb"
        base.unlink(missing_ok=True)
        with_features(master, base, n)
        got = {}
        for method in METHODS:
            db = work / f"run_{n}.duckdb"
            shutil.copy(base, db)
            got[method] = f = measure(db, method, args.memory_limit)
            print(
                f"{n:>8,} {f['rows']:>12,} {method:>10} {f['wall_s']:>8.1f} {f['cpu_s']:>8.1f} "
                f"{f['peak_rss'] / 2**30:>7.2f} G",
                flush=True,
            )
            db.unlink()
        base.unlink()
        a, b = got["chunked"], got["in memory"]
        ratios.append(
            f"{n:>8,} symbols: chunked / in memory: peak RSS {a['peak_rss'] / b['peak_rss']:.2f}, "
            f"wall {a['wall_s'] / b['wall_s']:.2f}, CPU {a['cpu_s'] / b['cpu_s']:.2f}"
        )
    print("\n".join(ratios))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
