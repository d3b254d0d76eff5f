"""Benchmark: the ML Signals page rendered in process, this checkout beside a baseline.

The store is bench_serve's 500-symbol one (five years of seeded bars, names, sectors, one
run's signals), plus what `stockml train` and `stockml signals` write since issue 24: the
contract of every BUY (training/contracts.py), the run's verdict and rule sentences and its
placed-trade figures. Each checkout (`--baseline DIR`, e.g. `git archive <commit> | tar -x
-C DIR`) runs in its own subprocess (cwd = the checkout, so it imports its own stockml),
the checkouts alternating over `--rounds`, each round on a fresh app (a fresh snapshot):

    first      the first GET /ml-signals of the app: the copy, the queries, the render
    render     GET /ml-signals?sort=<column>&dir=<asc|desc> for every sortable column of
               the baseline (a new page each: the rows memoised, the template rendered)
    cached     the same default page again (kept per copy: no render)
    api        GET /api/signals?sort=<column>... (a new body each)

Prints the median over rounds of each checkout's median, in ms, beside the baseline's and
their ratio. Usage:

    .venv/bin/python benchmarks/bench_page.py [--symbols 500] [--rounds 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_serve import build_store  # noqa: E402

from stockml import store  # noqa: E402

SORTS = ["symbol", "name", "sector", "p_win", "p_loss", "threshold", "last_close", "date"]
WORKER = """
import json, statistics, sys, time
from datetime import date
from pathlib import Path
from starlette.testclient import TestClient
import stockml
from stockml.web.app import create_app

db, work, sorts = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
work.mkdir(parents=True, exist_ok=True)
app = create_app(db, workdir=work, today=lambda: date(2026, 1, 5))
out = {"code": stockml.__file__}
with TestClient(app, base_url="http://127.0.0.1") as client:
    t = time.perf_counter()
    page = client.get("/ml-signals")
    out["first"] = time.perf_counter() - t
    assert page.status_code == 200, page.text[:200]
    out["rows"] = page.text.count('class="signal-row')
    for name, path in (("render", "/ml-signals"), ("api", "/api/signals")):
        times = []
        for column in sorts:
            for direction in ("asc", "desc"):
                t = time.perf_counter()
                client.get(path, params={"sort": column, "dir": direction}).raise_for_status()
                times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    times = []
    for _ in range(50):
        t = time.perf_counter(); client.get("/ml-signals").raise_for_status()
        times.append(time.perf_counter() - t)
    out["cached"] = statistics.median(times)
print(json.dumps(out))
"""


def add_trading(db: Path) -> None:
    """The run's BUYs get their contracts, the run its notes and placed-trade figures."""
    from training.contracts import contracts_frame

    con = store.connect(db)
    try:
        (run_id,) = con.execute("SELECT run_id FROM training_runs").fetchone()
        signals = store.query_pl(
            con,
            "SELECT s.* EXCLUDE (close, act_on, strike, expiry, premium, target_price, "
            "stop_price, last_exit), p.close FROM signals s JOIN prices p USING (symbol, date)",
        ).with_columns(vol_20=pl.lit(0.02))
        frame = contracts_frame(signals, 14, 0.1, -0.05).drop("vol_20")
        store.replace_signals(con, run_id, frame)
        figures = {"placed_trades": 400, "placed_hit_rate": 0.45, "sharpe": 0.7}
        metrics = [
            ("pooled", "stack", f"{side}_{k}", v)
            for side in ("call", "put")
            for k, v in figures.items()
        ]
        metrics += [("pooled", "stack", "call_trade_it", 1), ("pooled", "stack", "put_trade_it", 0)]
        metrics += [("live", "stack", f"{side}_rule_on", 1) for side in ("call", "put")]
        store.append_metrics(con, run_id, metrics)
        con.executemany(
            "INSERT INTO run_notes VALUES (?, ?, ?)",
            [
                (run_id, "verdict.call", "BUY CALL: trade it (400 placed trades ...)."),
                (run_id, "verdict.put", "BUY PUT: do not trade it: its trades lost money."),
                (run_id, "rule.live.call", "BUY CALL when p_win - p_loss >= +0.1000: ..."),
                (run_id, "rule.live.put", "BUY PUT when p_loss - p_win >= +0.1000: ..."),
            ],
        )
    finally:
        store.close(con)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to compare")
    args = parser.parse_args()
    codes = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        db = Path(tmp) / "s.duckdb"
        build_store(db, args.symbols)
        add_trading(db)
        results: dict[str, list[dict]] = {name: [] for name in codes}
        for k in range(args.rounds):
            for name, code in codes.items():
                proc = subprocess.run(
                    [sys.executable, "-c", WORKER, str(db), f"{tmp}/w-{name}-{k}", ",".join(SORTS)],
                    cwd=code,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for name, runs in results.items():
        print(f"{name}: {runs[0]['code']} ({runs[0]['rows']} rows)")
    print(
        f"\n/ml-signals in process, {args.symbols} symbols, medians over {args.rounds} rounds (ms)"
    )
    print(
        f"{'':10}" + "".join(f"{n:>12}" for n in codes) + ("       ratio" if len(codes) > 1 else "")
    )
    for key in ("first", "render", "cached", "api"):
        values = {n: 1000 * float(np.median([r[key] for r in runs])) for n, runs in results.items()}
        line = f"{key:10}" + "".join(f"{values[n]:12.2f}" for n in codes)
        if len(codes) > 1:
            line += f"{values['this'] / values['baseline']:12.2f}"
        print(line)


if __name__ == "__main__":
    main()
