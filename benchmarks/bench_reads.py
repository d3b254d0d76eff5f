"""What reading while a writer works costs: the writer's reading copy, and a read through it.

A long-writing command (`ingest`, `features`, `backtest`, `train`, `demo`) first copies the
store to `<db>.snapshot` when it changed (stockml/store/reading.py); `stockml sql` and
`signals` read that copy while the writer holds the store. This prints, for a store:

    copy      seconds for keep_reading_copy (median of --repeat), and GB/s
    read      seconds for open_for_reading + one query + close, on the store itself (no
              writer) and on the copy (a writer holding the store), and their ratio

Usage:
    .venv/bin/python benchmarks/bench_reads.py --db data/demo.duckdb [--repeat 5]
    .venv/bin/python benchmarks/bench_reads.py --size-mb 1000   # a synthetic store
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERY = "SELECT count(*), sum(length(symbol)) FROM prices"
HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('SELECT 1'); "
    "print('held', flush=True); sys.stdin.readline()"
)


def synthetic(db: Path, size_mb: int) -> None:
    """A store whose `prices` table takes about `size_mb` (random walks, 8 columns)."""
    import duckdb

    from stockml import store

    store.connect(db).close()
    con = duckdb.connect(str(db))
    rows = size_mb * 2**20 // 30  # about 30 bytes a row once compressed
    con.execute(
        "INSERT INTO prices SELECT 'S' || (i % 5000), DATE '1990-01-01' + (i // 5000)::INT, "
        "r, r + 1, r - 1, r, r, (i % 977)::BIGINT "
        "FROM (SELECT i, random() * 100 AS r FROM range(?) t(i))",
        [rows],
    )
    con.close()


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing store (copied first, never changed)")
    parser.add_argument("--size-mb", type=int, default=500, help="synthetic store size")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from stockml import store
    from stockml.logs import configure_logging
    from stockml.store.reading import reading_copy_path

    configure_logging(None)
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as folder:
        db = Path(folder) / "s.duckdb"
        if args.db:
            shutil.copyfile(args.db, db)
        else:
            synthetic(db, args.size_mb)
        size = db.stat().st_size
        copy = reading_copy_path(db)

        def fresh_copy() -> None:
            copy.unlink(missing_ok=True)
            assert store.keep_reading_copy(db) == copy

        copy_s = timed(fresh_copy, args.repeat)

        def read() -> None:
            reading = store.open_for_reading(db)
            try:
                reading.con.execute(QUERY).fetchall()
            finally:
                reading.close()

        live_s = timed(read, args.repeat)
        writer = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout.readline().strip() == "held"
            assert not store.open_for_reading(db).live  # reads now go to the copy
            copy_read_s = timed(read, args.repeat)
        finally:
            writer.stdin.close()
            writer.wait()
    print(f"store {size / 1e9:.3f} GB, {os.cpu_count()} cores, median of {args.repeat}")
    print(f"copy  keep_reading_copy            {copy_s:8.3f} s   {size / 1e9 / copy_s:6.2f} GB/s")
    print(f"read  store itself, no writer      {live_s:8.3f} s")
    print(f"read  reading copy, writer holds   {copy_read_s:8.3f} s   x{copy_read_s / live_s:.2f}")


if __name__ == "__main__":
    main()
