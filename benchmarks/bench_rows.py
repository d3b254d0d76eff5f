"""Row caps for the costly models, chosen on development data (issue 23: cost that scales).

On about 400,000 labelled rows (82 stocks x 20 years) the histogram boosters fit all rows
in seconds; random forest, extra trees, the SVM (Nystroem map + calibrated linear SVM) and
the MLP cost far more per row. Each may get a `max_rows` setting: every fit then trains on
that many of its rows, drawn uniformly (training/ray_runner.py `subsample`).

Adoption rule, written before the first run: for each of those four models, the smallest
cap in CAPS whose test log loss is within TOLERANCE of the uncapped fit's on both
development periods is adopted; when none is, the model keeps every row.

Development data: the `dev` universe of bench_skill.py (69 stocks of the shared data in
neither benchmark universe, bars from 2001), so no benchmark stock's labels are looked at;
its years overlap the benchmark's, which no other choice avoids for a 20-year walk-forward.
Two periods: fit on the labelled days through 2010 (less a 14-day purge), test on
2011-2012; fit through 2014, test on 2015-2016. Default settings, one thread, the context
columns, unweighted.

    .venv/bin/python benchmarks/bench_rows.py --db /path/to/dev.duckdb   # stockml backtest done
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("random_forest", "extra_trees", "svm", "mlp")
CAPS = (25_000, 50_000, 100_000, None)
TOLERANCE = 0.002
PERIODS = (  # (last training day, first test day, last test day)
    ("2010-12-31", "2011-01-01", "2012-12-31"),
    ("2014-12-31", "2015-01-01", "2016-12-31"),
)
PURGE = 14

DEV_SAMPLES = None  # the dev matrix `over_periods` loads before the period processes fork


def dev_samples(db: Path):
    """Store `db`'s swing samples (features, context and labels), with the Numba cache
    configured, after printing their rows and days."""
    from features.cache import configure_numba_cache

    configure_numba_cache()
    from stockml import store
    from training.dataset import load_samples

    con = store.connect(db, read_only=True)
    samples = load_samples(con, "swing")
    con.close()
    days = np.unique(samples.dates)
    print(f"dev samples: {len(samples.y):,} rows, {days[0]} .. {days[-1]}", flush=True)
    return samples


def over_periods(db: Path, measure, jobs: int, *args) -> list:
    """The development studies' driver (bench_costs, bench_solvers, bench_budget): loads
    store `db`'s swing samples into DEV_SAMPLES once, before the period processes fork
    (each reads the parent's pages, none loads its own copy), then runs
    `measure(period, *args)` for every index of PERIODS, `jobs` at a time. Prints the rows
    and the minutes taken; returns the results in period order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    global DEV_SAMPLES
    DEV_SAMPLES = dev_samples(db)
    started = time.perf_counter()
    n = len(PERIODS)
    with ProcessPoolExecutor(jobs, mp_context=get_context("fork")) as pool:
        results = list(pool.map(measure, range(n), *([a] * n for a in args)))
    print(f"measured in {(time.perf_counter() - started) / 60:.1f} min")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from training.folds import Fold
    from training.metrics import log_loss3
    from training.models import BASE_MODELS
    from training.ray_runner import subsample

    samples = dev_samples(args.db)
    days = np.unique(samples.dates)
    results: dict[tuple[str, int, object], tuple[float, float, int]] = {}
    for p, (train_end, test_start, test_end) in enumerate(PERIODS):
        cut = np.searchsorted(days, np.datetime64(test_start))
        train = np.flatnonzero(samples.dates < days[cut - PURGE])
        test = np.flatnonzero(
            (samples.dates >= np.datetime64(test_start))
            & (samples.dates <= np.datetime64(test_end))
        )
        print(
            f"period {p + 1}: {len(train):,} training rows through {train_end}, "
            f"{len(test):,} test rows"
        )
        for name in args.models.split(","):
            for cap in CAPS:
                rows = subsample(train, cap, 7, Fold(1))
                started = time.perf_counter()
                with threadpool_limits(1):
                    model = BASE_MODELS[name](1, 7).fit(samples.x[rows], samples.y[rows])
                    proba = model.predict_proba(samples.x[test])
                seconds = time.perf_counter() - started
                loss = log_loss3(samples.y[test], proba)
                results[name, p, cap] = (loss, seconds, len(rows))
                print(
                    f"  {name:14s} cap {cap or 'all':>7} rows {len(rows):>7,} log loss "
                    f"{loss:.4f} {seconds:7.1f} s",
                    flush=True,
                )
    print(f"\nadoption (smallest cap within {TOLERANCE:.3f} of all rows on both periods):")
    for name in args.models.split(","):
        chosen = None
        for cap in CAPS[:-1]:
            if all(
                results[name, p, cap][0] <= results[name, p, None][0] + TOLERANCE
                for p in range(len(PERIODS))
            ):
                chosen = cap
                break
        speed = [results[name, p, None][1] / results[name, p, chosen][1] for p in range(2)]
        print(
            f"  {name}: max_rows {chosen or 'none'}"
            + (f" ({speed[0]:.1f}x / {speed[1]:.1f}x faster)" if chosen else "")
        )


if __name__ == "__main__":
    main()
