"""Walk-forward training wall time and peak memory as the rows grow, and Ray against serial.

Sizes (issue 23): a default `stockml train --fresh` (every yearly window and the live
model, all eight models) on real stocks of the shared data from 2001, at about 100 k, 400 k
and 1.5 M labelled rows: the 400 k store is the 82-stock skill universe, 100 k the first 22
of its symbols (`--train-symbols`), 1.5 M every stock of the shared data. Build the stores
with bench_skill.py's universes (`skill`, `all`) and `stockml backtest`, then

    .venv/bin/python benchmarks/bench_train.py --db-400k SKILL.duckdb --db-1500k ALL.duckdb
    .venv/bin/python benchmarks/bench_train.py --db-400k SKILL.duckdb --sizes 100k

Printed per size: wall time, peak memory of the process tree, Ray's workers included (PSS,
stockml/memory.py: a shared page counted once; beside it RSS summed, which counts Ray's
object store once per worker that maps it), fits, and each model's share of the fit
seconds (`training_fits`). Targets: 400 k rows within 15 minutes and 6 GB, 1.5 M within 60
minutes, on 2 cores.

`--vs-serial` runs the previous comparison instead: on the demo store (simulated market),
`stockml train --fresh` against the same fits one after another in this process, their
wall times, the ratio, the peak memory of each, and whether both gave the same test
probabilities.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STOCKML = Path(sys.executable).with_name("stockml")


def build_store(db: Path) -> None:
    subprocess.run(
        [str(STOCKML), "demo", "--no-train", "--quiet", "--db", str(db)], check=True, cwd=ROOT
    )


def run_size(label: str, db: Path, extra: list[str]) -> None:
    """`stockml train --fresh` on `db` with `extra` flags: wall time, peak RSS, fits and each
    model's share of the fit seconds."""
    import duckdb

    from stockml.memory import RssWatch

    started = time.perf_counter()
    with RssWatch(interval=0.5) as memory:
        cli = subprocess.Popen(
            [str(STOCKML), "train", "--db", str(db), "--fresh", "--quiet", *extra], cwd=ROOT
        )
        cli.wait()
    wall = time.perf_counter() - started
    if cli.returncode != 0:
        raise SystemExit(f"stockml train failed with exit code {cli.returncode}")
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id, windows = con.execute(
            "SELECT run_id, params FROM training_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        fits = con.execute(
            "SELECT model, count(*), sum(seconds) FROM training_fits WHERE run_id = ? "
            "GROUP BY model ORDER BY 3 DESC",
            [run_id],
        ).fetchall()
        params = json.loads(windows)
        (params["windows"],) = con.execute(
            'SELECT count(DISTINCT "window") FROM model_metrics WHERE run_id = ? '
            "AND \"window\" <> 'pooled'",
            [run_id],
        ).fetchone()
    finally:
        con.close()
    total = sum(s or 0 for _, _, s in fits)
    print(
        f"{label}: {params.get('samples', 0):,} labelled rows, {params.get('windows')} windows, "
        f"{sum(n for _, n, _ in fits)} fits: {wall / 60:.1f} min, peak PSS "
        f"{memory.peak_pss / 2**30:.2f} GiB (RSS summed {memory.peak / 2**30:.2f} GiB)"
    )
    print(
        "  fit seconds by model: "
        + ", ".join(f"{m} {s / total:.0%} ({s:.0f} s)" for m, _, s in fits if s)
    )


def ladder(args) -> None:
    from stockml.logs import configure_logging

    configure_logging(Path(tempfile.gettempdir()) / "bench_train.log")
    if args.db_400k:
        import duckdb

        con = duckdb.connect(str(args.db_400k), read_only=True)
        symbols = [
            r[0] for r in con.execute("SELECT DISTINCT symbol FROM prices ORDER BY 1").fetchall()
        ]
        con.close()
        subset = ",".join(symbols[:22])
        if "100k" in args.sizes:
            run_size("100 k", args.db_400k, ["--train-symbols", subset])
        if "400k" in args.sizes:
            run_size("400 k", args.db_400k, [])
    if args.db_1500k and "1.5M" in args.sizes:
        run_size("1.5 M", args.db_1500k, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-400k", type=Path, help="the 82-stock store from 2001")
    parser.add_argument("--db-1500k", type=Path, help="every stock of the shared data from 2001")
    parser.add_argument(
        "--sizes",
        type=lambda text: set(text.split(",")),
        default={"100k", "400k", "1.5M"},
        help="the rungs to run, of 100k,400k,1.5M (default all; the 400 k rung is also "
        "bench_skill.py --long's run)",
    )
    parser.add_argument("--vs-serial", action="store_true", help="Ray against serial (demo)")
    parser.add_argument("--db", type=Path, help="with --vs-serial: an existing demo store")
    args = parser.parse_args()
    if not args.vs_serial:
        ladder(args)
        return

    from stockml.logs import configure_logging
    from stockml.memory import RssWatch
    from training.config import TrainConfig
    from training.pipeline import run_training

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        configure_logging(Path(tmp) / "bench_train.log")
        if args.db is None:
            started = time.perf_counter()
            build_store(db)
            print(
                f"store: default universe, 2 years, built in {time.perf_counter() - started:.0f} s"
            )

        # parallel, as the user runs it
        started = time.perf_counter()
        with RssWatch(interval=0.5) as parallel_mem:
            cli = subprocess.Popen(
                [str(STOCKML), "train", "--db", str(db), "--fresh", "--quiet"], cwd=ROOT
            )
            cli.wait()
        parallel = time.perf_counter() - started
        if cli.returncode != 0:
            raise SystemExit(f"stockml train failed with exit code {cli.returncode}")
        runs = sorted((db.parent / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        parallel_proba = np.load(runs[-1] / "test_probabilities.npy")

        # serial, the same fits in this process
        started = time.perf_counter()
        with RssWatch(interval=0.5) as serial_mem:
            config = TrainConfig.create("swing")  # what `stockml train` builds by default
            result = run_training(db, config, fresh=True, progress=True, serial=True)
        serial = time.perf_counter() - started
        serial_proba = np.load(result.run_dir / "test_probabilities.npy")
        fits = len(list((result.run_dir / "fits").glob("*.json")))

    same = parallel_proba.shape == serial_proba.shape and np.allclose(
        parallel_proba, serial_proba, rtol=0, atol=1e-9
    )
    stack = result.metrics["stack"]
    print(
        f"pooled walk-forward test windows: stack accuracy {stack['accuracy']:.3f}, "
        f"majority baseline {stack['majority_baseline']:.3f}, log loss {stack['log_loss']:.3f} "
        f"vs prior {result.metrics['baseline_prior']['log_loss']:.3f}, call precision "
        f"{stack['call_precision']:.3f} at {stack['call_coverage']:.1%} coverage"
    )
    print(f"fits: {fits} (8 models x (8 date blocks + the live refit))")
    print(
        f"parallel (stockml train, Ray, {os.cpu_count()} CPUs): {parallel:6.1f} s, "
        f"peak PSS {parallel_mem.peak_pss / 2**30:.2f} GiB"
    )
    print(
        f"serial (same fits, one process):    {serial:6.1f} s, "
        f"peak PSS {serial_mem.peak_pss / 2**30:.2f} GiB"
    )
    print(
        f"parallel / serial: {parallel / serial:.2f}  (goal <= 0.65; 5-minute budget: "
        f"{'met' if parallel <= 300 else 'missed'})"
    )
    print(f"same test probabilities from both: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
