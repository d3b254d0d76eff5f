"""Cheaper settings for all eight base models, chosen on development data by log loss per
second (issue 23: cost that scales with rows; the second study after bench_rows.py).

bench_rows.py capped the rows of random forest, extra trees and the MLP; a default
`stockml train` on 82 stocks x 20 years still took 85.9 min against a 15-minute target, and
measured one thread at a time on 245 k rows every model costs 11-69 s a fit, the row-
proportional ones (the three boosters, logistic regression, the SVM) three quarters of the
whole. This study measures, per model, cheaper settings beside the reference (today's
estimator on all of a fit's rows):

- random forest and extra trees: every row, with the rows each tree draws fixed (sklearn's
  `max_samples` as a count, extra trees bootstrapping): a tree's cost no longer grows with
  the window, and every row can be drawn, where a `max_rows` cap discards rows;
- the MLP, logistic regression, the SVM: `max_rows` caps; the SVM a smaller Nystroem map;
- the boosters (which keep every row): half the rounds at twice the learning rate, and for
  scikit-learn's histogram booster, features sampled per split.

Adoption rule, written before the first run of this file: per model, the candidate with
the fewest fit seconds summed over both periods whose test log loss is within TOLERANCE
(0.002, the rule of bench_rows.py) of the reference's on both development periods; the
reference when none is. The adopted settings become `training.models.DEFAULTS`.

Development data and periods as in bench_rows.py: the `dev` universe (69 stocks in neither
benchmark universe, bars from 2001); fit through 2010 (less a 14-day purge), test
2011-2012; fit through 2014, test 2015-2016. One thread per fit, unweighted, context
columns; the two periods run side by side, one process each (`--jobs 1` for one).

    .venv/bin/python benchmarks/bench_costs.py --db DEV.duckdb   # `stockml backtest` done
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_rows  # noqa: E402
from benchmarks.bench_rows import PERIODS, PURGE, TOLERANCE  # noqa: E402

# Per model: (label, settings given to the factory on top of training.models.DEFAULTS);
# the first is the reference. Settings are the full override, so the reference names
# today's caps off explicitly.
CANDIDATES: dict[str, list[tuple[str, dict]]] = {
    "random_forest": [
        ("all rows", {"max_rows": None}),
        ("max_rows 100k", {"max_rows": 100_000}),
        ("all rows, 30k a tree", {"max_rows": None, "max_samples": 30_000}),
        ("all rows, 15k a tree", {"max_rows": None, "max_samples": 15_000}),
    ],
    "extra_trees": [
        ("all rows", {"max_rows": None}),
        ("max_rows 100k", {"max_rows": 100_000}),
        ("all rows, 30k a tree", {"max_rows": None, "bootstrap": True, "max_samples": 30_000}),
        ("all rows, 15k a tree", {"max_rows": None, "bootstrap": True, "max_samples": 15_000}),
    ],
    "mlp": [
        ("all rows", {"max_rows": None}),
        ("max_rows 100k", {"max_rows": 100_000}),
        ("max_rows 50k", {"max_rows": 50_000}),
        ("max_rows 25k", {"max_rows": 25_000}),
    ],
    "svm": [
        ("all rows", {}),
        ("max_rows 100k", {"max_rows": 100_000}),
        ("max_rows 50k", {"max_rows": 50_000}),
        ("50 components", {"n_components": 50}),
    ],
    "logistic": [
        ("all rows", {}),
        ("max_rows 100k", {"max_rows": 100_000}),
        ("max_rows 50k", {"max_rows": 50_000}),
    ],
    "lightgbm": [
        ("60 rounds", {}),
        ("30 rounds, lr 0.1", {"n_estimators": 30, "learning_rate": 0.1}),
    ],
    "xgboost": [
        ("60 rounds", {}),
        ("30 rounds, lr 0.1", {"n_estimators": 30, "learning_rate": 0.1}),
    ],
    "gradient_boosting": [
        ("50 rounds", {}),
        ("25 rounds, lr 0.1", {"max_iter": 25, "learning_rate": 0.1}),
        ("half the features a split", {"max_features": 0.5}),
    ],
}


def measure(period: int, names: list[str]) -> dict[tuple[str, str], tuple[float, float, int]]:
    """Every candidate of `names` on development period `period`: (label, model) ->
    (test log loss, fit + predict seconds, training rows)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP's iteration cap is a budget
    from training.folds import Fold
    from training.metrics import log_loss3
    from training.models import BASE_MODELS
    from training.ray_runner import subsample

    samples = bench_rows.DEV_SAMPLES
    train_end, test_start, test_end = PERIODS[period]
    days = np.unique(samples.dates)
    cut = np.searchsorted(days, np.datetime64(test_start))
    train = np.flatnonzero(samples.dates < days[cut - PURGE])
    test = np.flatnonzero(
        (samples.dates >= np.datetime64(test_start)) & (samples.dates <= np.datetime64(test_end))
    )
    print(
        f"period {period + 1}: {len(train):,} training rows through {train_end}, "
        f"{len(test):,} test rows",
        flush=True,
    )
    out = {}
    for name in names:
        for label, settings in CANDIDATES[name]:
            settings = dict(settings)
            rows = subsample(train, settings.pop("max_rows", None), 7, Fold(1))
            started = time.perf_counter()
            with threadpool_limits(1):
                model = BASE_MODELS[name](1, 7, **settings).fit(samples.x[rows], samples.y[rows])
                proba = model.predict_proba(samples.x[test])
            seconds = time.perf_counter() - started
            loss = log_loss3(samples.y[test], proba)
            out[name, label] = (loss, seconds, len(rows))
            print(
                f"  p{period + 1} {name:17s} {label:26s} rows {len(rows):>7,} "
                f"log loss {loss:.4f} {seconds:7.1f} s",
                flush=True,
            )
    return out


def adopt(results: list[dict], names: list[str]) -> None:
    """Print each model's candidates side by side and the rule's choice."""
    print(f"\nadoption (fewest seconds within {TOLERANCE:.3f} of the reference on both periods):")
    for name in names:
        reference = CANDIDATES[name][0][0]
        passing = []
        for label, _ in CANDIDATES[name]:
            losses = [r[name, label][0] for r in results]
            seconds = sum(r[name, label][1] for r in results)
            ok = all(r[name, label][0] <= r[name, reference][0] + TOLERANCE for r in results)
            print(
                f"  {name:17s} {label:26s} log loss "
                + " / ".join(f"{v:.4f}" for v in losses)
                + f"  {seconds:7.1f} s  {'within' if ok else 'outside'}"
            )
            if ok:
                passing.append((seconds, label))
        seconds, label = min(passing)
        base = sum(r[name, reference][1] for r in results)
        print(f"  -> {name}: {label} ({base / seconds:.1f}x faster than the reference)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--models", default=",".join(CANDIDATES))
    parser.add_argument("--jobs", type=int, default=2, help="periods measured at once")
    args = parser.parse_args()
    names = args.models.split(",")
    adopt(bench_rows.over_periods(args.db, measure, args.jobs, names), names)


if __name__ == "__main__":
    main()
