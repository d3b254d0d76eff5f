"""Which score a side's rule thresholds, chosen on development data (issue 24).

The rule of each side is a threshold chosen on the training period by the mean return
after costs of its placed trades (training/rules.py). Two scores are candidates: "edge"
(p_win - p_loss for a call, p_loss - p_win for a put) and "p_win" (each side's own
probability, the rule before issue 24). Both are run on the same fits of one finished
`stockml train` run of the development universe (bench_skill.py's `dev`: 69 stocks in
neither benchmark universe), so only the rule differs, and each is scored on that run's
yearly test windows as the product trades them: placed option trades after costs.

Adoption rule, written before the first run: "edge" is kept unless "p_win" has the higher
pooled mean option return after costs on both sides' placed trades and the higher summed
Sharpe of the two sides' portfolios; the benchmark universes are never looked at.

    .venv/bin/python benchmarks/bench_rules.py --db DEV.duckdb   # after `stockml train --db`

`--models a,b` reads the run of that model set instead of the default eight (the same
`--models` as the `stockml train` it follows): the stack of the cheap histogram booster and
the logistic model is a dev run in minutes where the default eight take hours on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--models", help="the run's models, comma-separated (default: all)")
    args = parser.parse_args()

    from features.cache import configure_numba_cache

    configure_numba_cache()
    from stockml import store
    from training.config import TrainConfig
    from training.dataset import load_samples
    from training.evaluation import evaluate_windows
    from training.folds import fit_jobs
    from training.pipeline import run_id_of, walk_forward
    from training.recorder import RunFolder, runs_root
    from training.rules import book_trades, choose_rule
    from training.trading import trade_windows
    from training.tuning import choose_settings
    from training.windows import stack_windows

    models = args.models.split(",") if args.models else None
    base = TrainConfig.create("swing", models)
    con = store.connect(args.db, read_only=True)
    try:
        samples = load_samples(con, "swing")
        lay, day_index = walk_forward(samples, base)
        run = RunFolder.open(runs_root(args.db), run_id_of(base, samples))
        book = book_trades(con, samples, base.profile, base.rules)
    finally:
        con.close()
    lives = samples.label_lives(day_index)
    tuning = choose_settings(base, samples.y, lay, day_index, run)
    jobs = fit_jobs(base, lay, day_index, {m: t["chosen"] for m, t in tuning.items()})
    print(f"dev run {run.run_id}: {len(samples.y):,} rows, {lay.describe()}")
    print("| score | side | placed trades | hit rate | mean option return | Sharpe | max DD |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    outcome = {}
    for score in ("edge", "p_win"):
        started = time.perf_counter()
        config = base.replace(rules=replace(base.rules, score=score))
        windows, _, oof = stack_windows(
            samples, lay, day_index, run, config, jobs, False, lives, book
        )

        def rule_of(proba, rows, config=config):
            span = f"{samples.dates[rows[0]]} .. {samples.dates[rows[-1]]}"
            return choose_rule(proba, rows, book, config.rules, span)

        evaluation = evaluate_windows(samples, lay, windows, oof, config.model_names, rule_of)
        traded = trade_windows(samples, lay, windows, evaluation, book, config, run.run_id)
        means, sharpe = [], 0.0
        for side, name in ((1, "call"), (-1, "put")):
            result = traded.results["stack"][side]
            f, s = result.figures, result.stats
            means.append(f[f"{name}_placed_mean_return"])
            sharpe += s["sharpe"] if np.isfinite(s["sharpe"]) else 0.0
            print(
                f"| {score} | {name} | {f[f'{name}_placed_trades']:.0f} | "
                f"{f[f'{name}_placed_hit_rate']:.3f} | {f[f'{name}_placed_mean_return']:+.2%} | "
                f"{s['sharpe']:.2f} | {s['max_drawdown']:.0%} |"
            )
        outcome[score] = (means, sharpe)
        print(f"  ({score}: {time.perf_counter() - started:.0f} s)", flush=True)
    (edge_means, edge_sharpe), (p_means, p_sharpe) = outcome["edge"], outcome["p_win"]
    better = all(
        np.nan_to_num(p, nan=-np.inf) > np.nan_to_num(e, nan=-np.inf)
        for p, e in zip(p_means, edge_means, strict=True)
    )
    adopted = "p_win" if better and p_sharpe > edge_sharpe else "edge"
    print(f"\nadopted score: {adopted} (p_win only if better on both sides' means and Sharpe)")


if __name__ == "__main__":
    main()
