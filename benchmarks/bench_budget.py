"""Two levers on the long protocol's cost beyond each fit's settings, chosen on development
data (issue 23: a default `stockml train` on 82 stocks x 20 years in at most 15 minutes).

After bench_rows.py, bench_costs.py and bench_solvers.py the long protocol still takes
37 min on 2 cores: every model is refitted for each of 18 yearly windows and the live
model, on every one of 202 columns, and what is left of a fit's cost is the libraries' own
work on those rows and columns (one thread on 386 k x 202 rows: LightGBM 37 s, of which
10 s build its Dataset; XGBoost 29 s, 14 s its quantile matrix; scikit-learn's histogram
booster 34 s, 9 s its binning). This study measures two levers that cut what is fitted,
not how:

- **fewer columns**: `training/redundancy.py`'s filter, the first step of every base model,
  dropping a column whose Spearman correlation with an earlier kept one is at least tau
  (0.95: 138 of 202 columns kept on the dev rows through 2010; 0.90: 111; 0.80: 80);
- **refitting the base models every second yearly window**: the year after a refit is
  predicted by the fit of the year before, trained one year less and one year staler
  (still on days before its window: the stack, rules and calibration are chosen every
  window as before). Measured as the second test year of each period predicted by the
  period's fit (stale) against a fit through the first test year (fresh).

Adoption rule, written before the first run of this file (the tolerance of bench_rows.py):
- fewer columns: the lowest tau whose test log loss is within TOLERANCE (0.002) of the
  model's on all columns, for every one of the eight models on both development periods;
  none when no tau is;
- refitting every second window: adopted when, for every one of the eight models on both
  periods, the stale fit's log loss on the second test year is within TOLERANCE of the
  fresh fit's.

Development data and periods as in bench_rows.py and bench_costs.py: the `dev` universe
(69 stocks in neither benchmark universe, bars from 2001); fit through 2010 (less a 14-day
purge), test 2011-2012; fit through 2014, test 2015-2016. One thread per fit, unweighted,
today's `training.models.DEFAULTS`; the two periods side by side, one process each.

    .venv/bin/python benchmarks/bench_budget.py --db DEV.duckdb   # `stockml backtest` done
    .venv/bin/python benchmarks/bench_budget.py --db DEV.duckdb --noise   # seed noise

`--noise` (added after the run above, to read its result, not to revisit it) fits each
model twice per period, with seeds 7 and 8, to show how far a model's test log loss moves
when only its seed does.
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

MODELS = (
    "random_forest",
    "extra_trees",
    "xgboost",
    "lightgbm",
    "gradient_boosting",
    "mlp",
    "logistic",
    "svm",
)
THRESHOLDS = (0.95, 0.90, 0.80)
SEED = 7


def fitted(name: str, rows: np.ndarray, threshold: float | None, seed: int = SEED):
    """Model `name` with today's defaults, the filter first when `threshold` is set, fitted
    on `rows` (capped as the runner caps them); returns (model, seconds)."""
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    from training.folds import Fold
    from training.models import BASE_MODELS, DEFAULTS
    from training.ray_runner import subsample
    from training.redundancy import RedundancyFilter

    samples = bench_rows.DEV_SAMPLES
    settings = dict(DEFAULTS[name])
    rows = subsample(rows, settings.pop("max_rows", None), seed, Fold(1))
    tree_rows = settings.pop("tree_rows", None)  # as training/ray_runner.py fit_one
    if tree_rows is not None:
        share = settings.get("max_samples") or 1.0
        settings["max_samples"] = max(1, min(int(tree_rows), int(share * len(rows))))
    model = BASE_MODELS[name](1, seed, **settings)
    if threshold is not None:
        model = make_pipeline(RedundancyFilter(threshold, seed=seed), model)
    started = time.perf_counter()
    with threadpool_limits(1):
        model.fit(samples.x[rows], samples.y[rows])
    return model, time.perf_counter() - started


def measure(period: int, names: list[str]) -> dict:
    """Every variant of each of `names` on development period `period`: key -> (log loss, seconds),
    keys (model, "all"), (model, tau), (model, "stale"), (model, "fresh")."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from training.metrics import log_loss3

    warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP's iteration cap is a budget
    samples = bench_rows.DEV_SAMPLES
    _, test_start, test_end = PERIODS[period]
    second_start = f"{int(test_start[:4]) + 1}-01-01"
    days = np.unique(samples.dates)

    def before(day: str) -> np.ndarray:
        cut = np.searchsorted(days, np.datetime64(day))
        return np.flatnonzero(samples.dates < days[cut - PURGE])

    def between(start: str, end: str) -> np.ndarray:
        d = samples.dates
        return np.flatnonzero((d >= np.datetime64(start)) & (d <= np.datetime64(end)))

    train, fresh_train = before(test_start), before(second_start)
    test, second = between(test_start, test_end), between(second_start, test_end)
    print(
        f"period {period + 1}: {len(train):,} training rows before {test_start} "
        f"({len(fresh_train):,} before {second_start}), {len(test):,} test rows "
        f"({len(second):,} from {second_start})",
        flush=True,
    )
    out = {}

    def record(key, model, rows, seconds):
        out[key] = (log_loss3(samples.y[rows], model.predict_proba(samples.x[rows])), seconds)
        keep = getattr(model, "steps", [[None, None]])[0][1]
        columns = len(keep.keep_) if hasattr(keep, "keep_") else samples.x.shape[1]
        print(
            f"  p{period + 1} {key[0]:17s} {key[1]!s:6s} columns {columns:3d} "
            f"log loss {out[key][0]:.4f} {seconds:6.1f} s",
            flush=True,
        )

    for name in names:
        model, seconds = fitted(name, train, None)
        record((name, "all"), model, test, seconds)
        record((name, "stale"), model, second, seconds)
        model, seconds = fitted(name, fresh_train, None)
        record((name, "fresh"), model, second, seconds)
        for threshold in THRESHOLDS:
            model, seconds = fitted(name, train, threshold)
            record((name, threshold), model, test, seconds)
    return out


def adopt(results: list[dict], names: list[str]) -> None:
    """Print the variants side by side and the rule's two choices."""

    def within(key, reference) -> bool:
        return all(r[key][0] <= r[reference][0] + TOLERANCE for r in results)

    def losses(key) -> str:
        return " / ".join(f"{r[key][0]:.4f}" for r in results)

    print(f"\nfewer columns (every model within {TOLERANCE:.3f} of all columns, both periods):")
    passing = []
    for threshold in THRESHOLDS:
        ok = True
        for name in names:
            good = within((name, threshold), (name, "all"))
            ok &= good
            all_s = sum(r[name, "all"][1] for r in results)
            tau_s = sum(r[name, threshold][1] for r in results)
            print(
                f"  tau {threshold:.2f} {name:17s} {losses((name, threshold))} "
                f"(all columns {losses((name, 'all'))})  {tau_s:6.1f} s vs {all_s:6.1f} s "
                f"({all_s / tau_s:.2f}x)  {'within' if good else 'outside'}"
            )
        total = sum(r[name, threshold][1] for r in results for name in names)
        base = sum(r[name, "all"][1] for r in results for name in names)
        print(f"  tau {threshold:.2f}: {base / total:.2f}x the fit seconds of all columns")
        if ok:
            passing.append(threshold)
    print(f"  -> fewer columns: {f'tau {min(passing):.2f}' if passing else 'none adopted'}")

    print(f"\nrefit every second window (stale within {TOLERANCE:.3f} of fresh, both periods):")
    ok = True
    for name in names:
        good = within((name, "stale"), (name, "fresh"))
        ok &= good
        print(
            f"  {name:17s} stale {losses((name, 'stale'))} fresh {losses((name, 'fresh'))}  "
            f"{'within' if good else 'outside'}"
        )
    print(f"  -> refit every second window: {'adopted' if ok else 'not adopted'}")


def measure_noise(period: int, names: list[str]) -> dict:
    """Each of `names` fitted twice on period `period`'s training rows, with the run seed
    7 and 8 (its random state and any row draw): name -> (log loss 7, log loss 8) on the
    test rows. How far a model moves when nothing but its seed does: the floor under any
    tolerance a rule sets for it."""
    from training.metrics import log_loss3

    samples = bench_rows.DEV_SAMPLES
    _, test_start, test_end = PERIODS[period]
    days = np.unique(samples.dates)
    cut = np.searchsorted(days, np.datetime64(test_start))
    train = np.flatnonzero(samples.dates < days[cut - PURGE])
    d = samples.dates
    test = np.flatnonzero((d >= np.datetime64(test_start)) & (d <= np.datetime64(test_end)))
    out = {}
    for name in names:
        losses = []
        for seed in (SEED, SEED + 1):
            model, _ = fitted(name, train, None, seed)
            losses.append(log_loss3(samples.y[test], model.predict_proba(samples.x[test])))
        out[name] = tuple(losses)
        print(f"  p{period + 1} {name:17s} seed 7 {losses[0]:.4f} seed 8 {losses[1]:.4f}")
    return out


def noise(results: list[dict], names: list[str]) -> None:
    print("\nseed noise (|log loss seed 8 - seed 7| on each period; the rules' tolerance 0.002):")
    for name in names:
        gaps = [abs(r[name][1] - r[name][0]) for r in results]
        print(f"  {name:17s} " + " / ".join(f"{g:.4f}" for g in gaps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--models", default=",".join(MODELS), help="a subset, for a quick look")
    parser.add_argument("--jobs", type=int, default=2, help="periods measured at once")
    parser.add_argument(
        "--noise", action="store_true", help="measure each model's seed noise instead"
    )
    args = parser.parse_args()
    names = args.models.split(",")
    if args.noise:
        noise(bench_rows.over_periods(args.db, measure_noise, args.jobs, names), names)
    else:
        adopt(bench_rows.over_periods(args.db, measure, args.jobs, names), names)


if __name__ == "__main__":
    main()
