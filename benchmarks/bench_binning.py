"""The histogram booster's weighted fits, binned in one pass (training/binning.py): the same
predictions, and what it saves, on development data (issue 23: cost that scales with rows).

The long protocol's fit records showed scikit-learn's histogram booster taking 3x as long
with the uniqueness weights as without (12.9 s against 4.1 s at 37,734 rows) while the
other models cost the same either way; profiled, the weighted binning (63 weighted
percentiles a column, each a sort) was 48.5 s of a 69.5 s fit at 127,628 rows.
`OnePassHistGradientBoosting` computes the same edges with one call per column.

Adoption rule, written before the first run: adopted if at every size its test
predictions equal the plain booster's (max |dp| = 0); then its speed is what it is.

The `dev` universe (69 stocks in neither benchmark universe, bars from 2001); fits through
the end of 2004, 2007 and 2010 (less a 14-day purge: about 50 k, 110 k and 175 k rows, all
under the booster's 200,000-row binning sample, where the weighted percentiles are
computed), each weighted by label uniqueness among its own rows as a run weights them,
testing the next calendar year; today's settings, one thread, the two side by side in one
process, best of `--repeat`.

    .venv/bin/python benchmarks/bench_binning.py --db DEV.duckdb   # `stockml backtest` done
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_rows import PURGE, dev_samples  # noqa: E402

ENDS = ("2004", "2007", "2010")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=1, help="fits of each, the best kept")
    args = parser.parse_args()

    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from training.metrics import log_loss3
    from training.models import BASE_MODELS, estimator_settings
    from training.weights import weights_of

    samples = dev_samples(args.db)
    days = np.unique(samples.dates)
    day_index = np.searchsorted(days, samples.dates)
    lives = samples.label_lives(day_index)
    settings = {"random_state": 7, **estimator_settings("gradient_boosting")}

    def best(make, x, y, w, test):
        seconds, proba = [], None
        for _ in range(args.repeat):
            started = time.perf_counter()
            with threadpool_limits(1):
                proba = make().fit(x, y, sample_weight=w).predict_proba(test)
            seconds.append(time.perf_counter() - started)
        return min(seconds), proba

    print("| training rows | plain s | one-pass s | speed-up | max abs dp | log loss (both) |")
    print("| --- | --- | --- | --- | --- | --- |")
    identical = True
    for end in ENDS:
        cut = np.searchsorted(days, np.datetime64(f"{int(end) + 1}-01-01"))
        train = np.flatnonzero(day_index < cut - PURGE)
        test = np.flatnonzero(samples.dates.astype("datetime64[Y]") == np.datetime64(end) + 1)
        w = weights_of(lives, train)
        x, y, xt = samples.x[train], samples.y[train], samples.x[test]
        plain_s, plain = best(lambda: HistGradientBoostingClassifier(**settings), x, y, w, xt)
        binned_s, binned = best(lambda: BASE_MODELS["gradient_boosting"](1, 7), x, y, w, xt)
        dp = float(np.abs(plain - binned).max())
        identical &= dp == 0.0
        print(
            f"| {len(train):,} (through {end}) | {plain_s:.1f} | {binned_s:.1f} | "
            f"{plain_s / binned_s:.2f}x | {dp:.1e} | {log_loss3(samples.y[test], binned):.4f} |",
            flush=True,
        )
    print(
        f"-> one-pass binning: {'adopted' if identical else 'NOT adopted'} (predictions "
        f"{'identical' if identical else 'differ'} at every size)"
    )


if __name__ == "__main__":
    main()
