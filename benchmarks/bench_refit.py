"""The refit cadence judged on what the product reports (issue 23's 15-minute target).

The default `stockml train` recipe on the `dev` universe (69 stocks in neither benchmark
universe, bars 2001 .. 2021-04: design data, never a reported benchmark) twice, with the
base models refitted at every yearly test window (`refit_every` 1, today's default) and at
every second one (2: the window between two refits is predicted by the fit before it, which
ended a purge before its own window). Prints, pooled over the yearly windows, each run's
stack log loss, rank IC (Newey-West t), top-10 % win precision, its skill verdicts (class
prior and best base model on log loss, natr_14 on top-10 % win precision, IC t >= 2), the
years with IC > 0, fit count and fit seconds, wall time and peak memory; then the verdict
of the rule below.

Adoption rule, written before the refit-1 run on dev was run or looked at (2026-12-03).
`refit_every` 2 becomes the default when, pooled, the stack at 2 against the stack at 1:
- log loss at most 0.002 higher;
- rank IC at most 0.005 lower;
- top-10 % win precision at most 0.005 lower;
- every skill verdict that holds at 1 holds at 2;
and the fits at 2 take at most 0.6 of the fit seconds at 1.

What came before, so the rule is read with it: benchmarks/bench_budget.py asked the same
question per base model (stale within 0.002 of fresh on two dev periods): 7 of 8 were, the
MLP was not (0.7880 vs 0.7799), and its `--noise` run then showed the MLP moving 0.0092 with
its seed alone, so that tolerance sat below one model's own noise. The refit-2 run on dev
(1a5e72febb9b647d, 13 min 53 s) was run and its report read before this rule was written;
the refit-1 run had never been run. This study judges the stack, the product's output,
rather than each base model.

    .venv/bin/python benchmarks/bench_refit.py --db /path/dev.duckdb

A run already in the store is resumed from its checkpoints (its fit seconds are its own,
recorded at fit time; its wall time is then the resumption's, and the line says so).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CADENCES = (1, 2)
TOLERANCE = {"log_loss": 0.002, "rank_ic": 0.005, "top10_win_precision": 0.005}
MAX_FIT_SHARE = 0.6


def verdicts(pooled: dict) -> dict[str, bool]:
    """The skill bullets of issue 23 on one run's pooled metrics (model -> metric -> value)."""
    stack = pooled["stack"]
    return {
        "log loss beats the class prior": stack["log_loss"] < pooled["baseline_prior"]["log_loss"],
        "log loss beats the best base model": stack["log_loss"]
        < pooled["baseline_best_base"]["log_loss"],
        "top-10 % win beats natr_14": stack["top10_win_precision"]
        > pooled["baseline_volatility"]["top10_win_precision"],
        "rank IC > 0 at t >= 2": stack["rank_ic"] > 0 and stack["rank_ic_t"] >= 2,
    }


def measure(db: Path, every: int) -> dict:
    """One default run at `every`: its pooled metrics, windows with IC > 0, fits, times."""
    from bench_skill import run_metrics

    from stockml import store
    from stockml.memory import RssWatch
    from training.config import TrainConfig
    from training.pipeline import run_training

    config = TrainConfig.create("swing", refit_every=every)
    watch = RssWatch().start()
    started = time.perf_counter()
    result = run_training(db, config, progress=True)
    wall = time.perf_counter() - started
    watch.stop()
    con = store.connect(db, read_only=True)
    try:
        fits, seconds = con.execute(
            "SELECT count(*), sum(seconds) FROM training_fits WHERE run_id = ?", [result.run_id]
        ).fetchone()
    finally:
        con.close()
    m = run_metrics(db, result.run_id)
    names = [w.name for w in result.windows]
    return {
        "run": result.run_id,
        "pooled": m["pooled"],
        "positive": sum(1 for w in names if (m[w]["stack"].get("rank_ic") or 0) > 0),
        "windows": len(names),
        "fits": fits,
        "fit_seconds": seconds,
        "wall": wall,
        "peak": watch.peak_pss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the dev universe's store")
    args = parser.parse_args()
    if not args.db.exists():
        from bench_skill import LONG_END, LONG_START, build_store

        build_store(args.db, LONG_START, LONG_END, "dev")
    runs = {every: measure(args.db, every) for every in CADENCES}
    print(f"\ndev universe, default recipe; store {args.db}")
    print(
        "| refit every | run | log loss | rank IC (t) | top-10 % win | natr_14 | IC > 0 "
        "| fits | fit s | wall | peak PSS |"
    )
    print("| --- " * 11 + "|")
    for every, r in runs.items():
        p = r["pooled"]
        print(
            f"| {every} | {r['run']} | {p['stack']['log_loss']:.4f} | "
            f"{p['stack']['rank_ic']:+.4f} ({p['stack']['rank_ic_t']:.1f}) | "
            f"{p['stack']['top10_win_precision']:.4f} | "
            f"{p['baseline_volatility']['top10_win_precision']:.4f} | "
            f"{r['positive']}/{r['windows']} | {r['fits']} | {r['fit_seconds']:,.0f} | "
            f"{r['wall'] / 60:.1f} min | {r['peak'] / 2**30:.2f} GiB |"
        )
    fresh, stale = runs[1], runs[2]
    checks = []
    for metric, tolerance in TOLERANCE.items():
        a, b = fresh["pooled"]["stack"][metric], stale["pooled"]["stack"][metric]
        worse = b - a if metric == "log_loss" else a - b
        checks.append(
            (
                f"{metric}: {b:.4f} vs {a:.4f} (worse by {worse:+.4f}, <= {tolerance})",
                worse <= tolerance,
            )
        )
    v1, v2 = verdicts(fresh["pooled"]), verdicts(stale["pooled"])
    for name in v1:
        checks.append((f"{name}: {v1[name]} at 1, {v2[name]} at 2", v2[name] or not v1[name]))
    share = stale["fit_seconds"] / fresh["fit_seconds"]
    checks.append(
        (f"fit seconds {share:.2f} of refit 1's (<= {MAX_FIT_SHARE})", share <= MAX_FIT_SHARE)
    )
    print("\nrule (written before the refit-1 run):")
    for text, ok in checks:
        print(f"  {'pass' if ok else 'FAIL'}  {text}")
    adopted = all(ok for _, ok in checks)
    print(f"  -> refit every second window {'adopted' if adopted else 'not adopted'}")
    print("(a resumed run's wall time is its resumption's; its fit seconds are its own)")


if __name__ == "__main__":
    main()
