"""The same fits, computed cheaper: the median imputer and the SVM's solver (issue 23:
cost that scales with rows; the third study after bench_rows.py and bench_costs.py).

Profiled one fit at a time on the long protocol's largest window (366 k rows x 202, one
thread), scikit-learn's median imputation (`SimpleImputer`, a masked copy of the whole
matrix) took 11-16 s of a random forest's 26 s and an SVM's 70 s, and the SVM's calibrated
linear SVM 53 s solving the primal (what liblinear's `dual="auto"` picks with more rows
than columns), against 15 s for the dual coordinate descent on the same objective. Neither
is a setting of the model: the imputer's medians are the same numbers
(tests/test_training_impute.py), the solvers minimise one objective. This file measures,
on development data, what each costs and whether the predictions move:

- every imputing model (random forest, extra trees, the MLP, logistic regression, the SVM)
  with scikit-learn's imputer (the reference) and with training.impute.MedianImputer;
- the SVM also with `dual=True` on top.

Adoption rule, written before the first run: the imputer is adopted if every model's test
predictions are identical with it (max |dp| = 0) on both development periods; the dual
solver if the SVM's test log loss is within TOLERANCE (0.002, the rule of bench_rows.py and
bench_costs.py) of the reference's on both periods and it is faster summed over them.

Development data and periods as in bench_rows.py (the `dev` universe, fit through 2010,
test 2011-2012; fit through 2014, test 2015-2016), each model's row caps as a default run
applies them, one thread; each fit in a fresh forked process whose peak resident memory
above its start is reported beside its seconds; the two periods side by side.

    .venv/bin/python benchmarks/bench_solvers.py --db DEV.duckdb   # `stockml backtest` done
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_rows  # noqa: E402
from benchmarks.bench_rows import PERIODS, PURGE, TOLERANCE  # noqa: E402

MODELS = ("random_forest", "extra_trees", "mlp", "logistic", "svm")
# (label, scikit-learn's imputer?, settings on top of DEFAULTS); the first is the reference
VARIANTS: dict[str, list[tuple[str, bool, dict]]] = {
    name: [("sklearn imputer", True, {}), ("MedianImputer", False, {})] for name in MODELS
}
VARIANTS["svm"] = [
    ("sklearn imputer, primal", True, {"dual": "auto"}),
    ("MedianImputer, primal", False, {"dual": "auto"}),
    ("MedianImputer, dual", False, {"dual": True}),
]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _one_fit(name: str, sklearn_imputer: bool, settings: dict, train, test, conn) -> None:
    """In a forked child: fit and predict, send (proba, seconds, peak bytes above start)."""
    from sklearn.impute import SimpleImputer
    from threadpoolctl import threadpool_limits

    from training.folds import Fold
    from training.models import BASE_MODELS, settings_of
    from training.ray_runner import subsample

    samples = bench_rows.DEV_SAMPLES
    float(samples.x.sum())  # every page of the matrix resident before the baseline
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS (Linux)
    start = _status_kib("VmRSS")
    chosen = {**settings_of(name), **settings}
    rows = subsample(train, chosen.pop("max_rows", None), 7, Fold(1))
    tree_rows = chosen.pop("tree_rows", None)
    if tree_rows is not None:
        chosen["max_samples"] = max(1, min(int(tree_rows), int(chosen["max_samples"] * len(rows))))
    started = time.perf_counter()
    with threadpool_limits(1):
        model = BASE_MODELS[name](1, 7, **chosen)
        if sklearn_imputer:
            model.steps[0] = (
                "simpleimputer",
                SimpleImputer(strategy="median", keep_empty_features=True),
            )
        model.fit(samples.x[rows], samples.y[rows])
        proba = model.predict_proba(samples.x[test])
    seconds = time.perf_counter() - started
    conn.send((proba, seconds, (_status_kib("VmHWM") - start) * 1024, len(rows)))
    conn.close()


def measure(period: int, names: list[str]) -> dict:
    """Every variant of `names` on development period `period`: (model, label) -> (test
    log loss, max |dp| against the model's reference, seconds, peak bytes, rows)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from training.metrics import log_loss3

    warnings.simplefilter("ignore", ConvergenceWarning)
    samples = bench_rows.DEV_SAMPLES
    _, test_start, test_end = PERIODS[period]
    days = np.unique(samples.dates)
    cut = np.searchsorted(days, np.datetime64(test_start))
    train = np.flatnonzero(samples.dates < days[cut - PURGE])
    test = np.flatnonzero(
        (samples.dates >= np.datetime64(test_start)) & (samples.dates <= np.datetime64(test_end))
    )
    print(f"period {period + 1}: {len(train):,} training rows, {len(test):,} test rows", flush=True)
    context = get_context("fork")
    out = {}
    for name in names:
        reference = None
        for label, sklearn_imputer, settings in VARIANTS[name]:
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_one_fit, args=(name, sklearn_imputer, settings, train, test, send)
            )
            child.start()
            proba, seconds, peak, rows = receive.recv()
            child.join()
            reference = proba if reference is None else reference
            moved = float(np.abs(proba - reference).max())
            loss = log_loss3(samples.y[test], proba)
            out[name, label] = (loss, moved, seconds, peak, rows)
            print(
                f"  p{period + 1} {name:14s} {label:24s} rows {rows:>7,} log loss {loss:.4f} "
                f"max|dp| {moved:.5f} {seconds:6.1f} s peak +{peak / 2**30:.2f} GiB",
                flush=True,
            )
    return out


def adopt(results: list[dict], names: list[str]) -> None:
    """Each variant over both periods and what the rule adopts."""
    print("\nboth periods (log loss p1 / p2, max |dp| vs the reference, seconds, peak memory):")
    identical = True
    for name in names:
        reference = VARIANTS[name][0][0]
        base = sum(r[name, reference][2] for r in results)
        for label, _, _ in VARIANTS[name]:
            losses = " / ".join(f"{r[name, label][0]:.4f}" for r in results)
            moved = max(r[name, label][1] for r in results)
            seconds = sum(r[name, label][2] for r in results)
            peak = max(r[name, label][3] for r in results)
            print(
                f"  {name:14s} {label:24s} {losses}  max|dp| {moved:.5f}  {seconds:6.1f} s "
                f"({base / seconds:.1f}x)  peak +{peak / 2**30:.2f} GiB"
            )
            if label.startswith("MedianImputer") and "dual" not in label:
                identical &= moved == 0.0
    print(
        f"  -> MedianImputer: {'adopted' if identical else 'NOT adopted'} "
        f"(predictions {'identical' if identical else 'moved'})"
    )
    if "svm" in names:
        primal, dual = "MedianImputer, primal", "MedianImputer, dual"
        reference = VARIANTS["svm"][0][0]
        within = all(r["svm", dual][0] <= r["svm", reference][0] + TOLERANCE for r in results)
        faster = sum(r["svm", dual][2] for r in results) < sum(r["svm", primal][2] for r in results)
        print(
            f"  -> svm dual=True: {'adopted' if within and faster else 'NOT adopted'} "
            f"({'within' if within else 'outside'} {TOLERANCE} of the reference on both "
            f"periods, {'faster' if faster else 'not faster'} than the primal)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="periods measured at once")
    args = parser.parse_args()
    names = args.models.split(",")
    adopt(bench_rows.over_periods(args.db, measure, args.jobs, names), names)


if __name__ == "__main__":
    main()
