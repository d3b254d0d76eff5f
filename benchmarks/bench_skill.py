"""Skill on real stocks (issue 12): the ablation of the stack on 82 real S&P 500 stocks.

The universe is ../shared/data/skill_universe82.tsv (82 stocks, all 11 GICS sectors),
served from ../shared/data/sp500_daily.parquet by the Yahoo-compatible fixture server on
127.0.0.1 and ingested by the real client: samples from 2019-04-22 to 2021-04-21 (labels up
to 2021-03-31), about 15 months of earlier history for the features' warm-up. Then
`training.ablation.run_ablation`: four walk-forward runs (catalog features only; + context;
+ uniqueness weights; the final stack with tuning and base-model selection), four test
windows over the last 20 % of days, every choice made on training periods only.

Prints the table of the issue (pooled over the test windows) beside its anchor rows (the
single-split figures the issue quotes), the final stack's intervals against the class
prior, its best single base model and the natr_14 ranking, and each run's wall time.

    .venv/bin/python benchmarks/bench_skill.py [--db PATH]

Development periods. A change to the recipe is designed on earlier years of the same 82
stocks, never on the benchmark's test windows: `--period dev1` (samples 2015-04-22 ..
2017-04-21) and `--period dev2` (2017-04-22 .. 2019-04-21, whose labels end before the
benchmark's first sample) run the same ablation there; `--only final` runs the final
recipe alone. The benchmark period itself is run once a change is settled. `--universe
other` runs on 82 other stocks of the shared data instead (the same count per sector, drawn
with a fixed seed from those with bars from 2017 to 2021-04): a second check of a recipe on
stocks it was not designed on.

The long protocol (issue 23), `--long`: the universe with history from 2001-01-02 (`skill`,
or `--universe other`: 82 other stocks with bars over 2001 .. 2021-04, the same count per
sector), the default `stockml train` recipe run once: yearly test windows 2005 .. 2021 (each
with its own expanding training period, a 14-day purge before it), printed per year and
pooled: log loss of the stack, the class prior, the best base model and the volatility-only
model; top-10 % win and loss precision of the stack and of the natr_14 ranking; the daily
rank IC of the stack (Newey-West t) and of the volatility model; daily top-10 % win share;
the stack's pooled lifts; wall time and peak memory. Its design was chosen on the `dev`
universe (69 stocks in neither, bars from 2001): benchmarks/bench_rows.py.

    .venv/bin/python benchmarks/bench_skill.py --long --db /path/skill.duckdb

`--rescore RUN` (with `--long`) re-scores a finished run's fits with today's measures and
fits nothing: for a measure fixed after the run (the run id digests the training code, so
rerunning the same command would refit every model). Wall time and memory are then those
of the re-scoring.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
PERIODS = {  # name -> first and last sample day
    "benchmark": (date(2019, 4, 22), date(2021, 4, 21)),
    "dev1": (date(2015, 4, 22), date(2017, 4, 21)),
    "dev2": (date(2017, 4, 22), date(2019, 4, 21)),
}
START, END = PERIODS["benchmark"]

ANCHORS = [  # the issue's single-split figures: (row, accuracy, log loss, top-10 % precision)
    ("majority class", 0.506, 1.047, None),
    ("best base model by accuracy (SVM)", 0.549, 0.978, 0.410),
    ("logistic regression", 0.499, 1.010, 0.484),
    ("stack", 0.546, 0.952, 0.448),
    ("AutoGluon, best quality, same date folds, 600 s", 0.539, 0.940, 0.420),
    ("no model: rank by natr_14", None, None, 0.425),
]


def universe(which: str = "skill") -> list[tuple[str, str]]:
    """(symbol, sector) of the benchmark's 82 stocks (`skill`); of 82 others with the same
    count per sector (`other`: bars over 2017-01-03 .. 2021-04-21; `other-long`: over
    2001-01-02 .. 2021-04-21, for the long protocol); or of a development universe of
    stocks in neither (`dev`: bars from 2001, the same counts where the sectors have them)."""
    with (SHARED / "skill_universe82.tsv").open() as handle:
        skill = [(row[0], row[1]) for row in csv.reader(handle, delimiter="\t") if row]
    if which == "skill":
        return skill
    if which == "all":  # every stock of the shared data (bench_train's 1.5 M rows)
        import polars as pl

        listed = pl.read_csv(SHARED / "sp500_constituents.csv")
        present = set(
            pl.scan_parquet(SHARED / "sp500_daily.parquet")
            .select("symbol")
            .unique()
            .collect()["symbol"]
        )
        return [
            (r["symbol"], r["sector"])
            for r in listed.iter_rows(named=True)
            if r["symbol"] in present
        ]
    if which == "other":
        return other_universe(skill, date(2017, 1, 3))
    long_other = other_universe(skill, date(2001, 1, 2))
    if which == "other-long":
        return long_other
    return other_universe(skill, date(2001, 1, 2), seed=1, exclude={s for s, _ in long_other})


def other_universe(
    skill: list[tuple[str, str]], covered_from: date, seed: int = 0, exclude=frozenset()
) -> list[tuple[str, str]]:
    """As many stocks per sector as `skill` has (fewer where a sector has fewer left), none
    of them nor of `exclude`, drawn with `seed` among the shared data's symbols with bars
    over `covered_from` .. 2021-04-21."""
    import numpy as np
    import polars as pl

    spans = (
        pl.scan_parquet(SHARED / "sp500_daily.parquet")
        .group_by("symbol")
        .agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
        .collect()
    )
    covered = set(
        spans.filter((pl.col("first") <= covered_from) & (pl.col("last") >= date(2021, 4, 21)))[
            "symbol"
        ]
    )
    taken = {s for s, _ in skill} | set(exclude)
    sectors = pl.read_csv(SHARED / "sp500_constituents.csv")
    rng = np.random.default_rng(seed)
    out = []
    for sector in sorted({sec for _, sec in skill}):
        need = sum(sec == sector for _, sec in skill)
        pool = sorted(
            s
            for s in sectors.filter(pl.col("sector") == sector)["symbol"]
            if s in covered and s not in taken
        )
        out += [(str(s), sector) for s in rng.choice(pool, min(need, len(pool)), replace=False)]
    return out


def build_store(db: Path, start: date = START, end: date = END, which: str = "skill") -> float:
    """Ingest the universe through the fixture server; returns seconds."""
    from ingest.client import FetchPolicy
    from ingest.run import IngestRequest, run_ingest
    from ingest.server import MarketData, ServerThread, YahooServer

    pairs = universe(which)
    symbols = [s for s, _ in pairs]
    started = time.perf_counter()
    market = MarketData.from_parquet(SHARED / "sp500_daily.parquet", symbols)
    with ServerThread(YahooServer(market, None)) as server:
        request = IngestRequest(
            symbols=symbols,
            start=start,
            end=end,
            db_path=db,
            policy=FetchPolicy(base_url=server.base_url, rate=50.0, concurrency=8),
            progress=True,
            listings=[(s, s, sector) for s, sector in pairs],
        )
        result = run_ingest(request)
    failed = [r for r in result.results.values() if r.status == "failed"]
    if failed:
        raise SystemExit(f"ingest failed for {len(failed)} symbols: {failed[:3]}")
    return time.perf_counter() - started


def interval(con, run_id: str, model: str, metric: str) -> str:
    rows = dict(
        con.execute(
            "SELECT metric, value FROM model_metrics WHERE run_id = ? AND \"window\" = 'pooled' "
            "AND model = ? AND metric IN (?, ?, ?)",
            [run_id, model, metric, f"{metric}_ci_low", f"{metric}_ci_high"],
        ).fetchall()
    )
    point, low, high = rows.get(metric), rows.get(f"{metric}_ci_low"), rows.get(f"{metric}_ci_high")
    if point is None:
        return "–"
    verdict = "better" if low > 0 else "worse" if high < 0 else "not significant"
    return f"{point:+.4f} [{low:+.4f}, {high:+.4f}] ({verdict})"


LONG_START, LONG_END = date(2001, 1, 2), date(2021, 4, 21)


def rescored(db: Path, run_id: str):
    """A finished run's fits re-scored with today's measures, nothing fitted: its windows,
    its per-window metrics (window -> model -> metric) and the stack's ranking lifts. For a
    measure fixed after the run (the run id digests the training code, so a rerun would
    refit every model)."""
    from stockml import store
    from training.config import TrainConfig
    from training.evaluation import evaluate_windows
    from training.folds import fit_jobs
    from training.pipeline import walk_forward
    from training.recorder import RunFolder, runs_root
    from training.rules import book_trades, choose_rule
    from training.tuning import choose_settings
    from training.windows import stack_windows

    config = TrainConfig.create("swing")
    con = store.connect(db, read_only=True)
    try:
        samples = load_samples_of(con)
        lay, day_index = walk_forward(samples, config)
        book = book_trades(con, samples, config.profile, config.rules)
    finally:
        con.close()
    run = RunFolder.open(runs_root(db), run_id)
    lives = samples.label_lives(day_index) if config.recipe.weights else None
    tuning = choose_settings(config, samples.y, lay, day_index, run)
    jobs = fit_jobs(config, lay, day_index, {m: t["chosen"] for m, t in tuning.items()})
    windows, _, oof = stack_windows(samples, lay, day_index, run, config, jobs, True, lives, book)

    def rule_of(proba, rows):
        span = f"{samples.dates[rows[0]]} .. {samples.dates[rows[-1]]}"
        return choose_rule(proba, rows, book, config.rules, span)

    evaluation = evaluate_windows(samples, lay, windows, oof, config.model_names, rule_of)
    return windows, evaluation.by_window, evaluation.ranking_lifts


def load_samples_of(con):
    from training.dataset import load_samples

    return load_samples(con, "swing")


def run_metrics(db: Path, run_id: str) -> dict:
    """A run's `model_metrics` as window -> model -> metric -> value."""
    from stockml import store

    con = store.connect(db, read_only=True)
    try:
        rows = con.execute(
            'SELECT "window", model, metric, value FROM model_metrics WHERE run_id = ?',
            [run_id],
        ).fetchall()
    finally:
        con.close()
    m: dict = {}
    for window, model, metric, value in rows:
        m.setdefault(window, {}).setdefault(model, {})[metric] = value
    return m


def long_protocol(db: Path, which: str, rescore: str | None = None) -> None:
    """Issue 23's long protocol: the universe with history from 2001, the default
    `stockml train` recipe (every yearly window, 2005 .. 2021, each with its own training
    period), run once; per year and pooled: log loss (stack, class prior, best base model),
    top-10 % win and loss precision (stack, natr_14), daily rank IC with Newey-West t, and
    the run's wall time and peak memory."""
    from stockml import store
    from stockml.memory import RssWatch
    from training.config import TrainConfig
    from training.pipeline import run_training

    ingest_s = build_store(db, LONG_START, LONG_END, which) if not db.exists() else 0.0
    watch = RssWatch().start()
    started = time.perf_counter()
    if rescore:
        from types import SimpleNamespace

        windows, by_window, lifts = rescored(db, rescore)
        result = SimpleNamespace(run_id=rescore, windows=windows, report="(not rewritten)")
    else:
        result = run_training(db, TrainConfig.create("swing"), progress=True)
    wall = time.perf_counter() - started
    peak = watch.stop()
    m = run_metrics(db, result.run_id)

    if rescore:  # today's measures over the stored ones; lifts are the stack's, pooled
        for window, table in by_window.items():
            for model, values in table.items():
                m.setdefault(window, {}).setdefault(model, {}).update(values)
        for baseline, values in lifts.items():
            m["pooled"].setdefault(baseline, {}).update(values)

    def f(window, model, metric, spec=".3f"):
        value = m.get(window, {}).get(model, {}).get(metric)
        return "–" if value is None or value != value else format(value, spec)

    print(f"\n{which} universe, history from {LONG_START}; store {db}; ingest {ingest_s:.0f} s")
    print(
        "| window | rows | log loss stack | prior | best base | vol. model | top-10 % win stack "
        "| natr_14 | top-10 % loss stack | natr_14 | rank IC stack (t) | vol. model IC | "
        "top-10 % win/day stack | natr_14 |"
    )
    print("| --- " * 14 + "|")
    for window in [w.name for w in result.windows] + ["pooled"]:
        n = sum(len(w.rows) for w in result.windows if window in (w.name, "pooled"))
        print(
            f"| {window} | {n:,} | {f(window, 'stack', 'log_loss')} | "
            f"{f(window, 'baseline_prior', 'log_loss')} | "
            f"{f(window, 'baseline_best_base', 'log_loss')} | "
            f"{f(window, 'baseline_volatility_model', 'log_loss')} | "
            f"{f(window, 'stack', 'top10_win_precision')} | "
            f"{f(window, 'baseline_volatility', 'top10_win_precision')} | "
            f"{f(window, 'stack', 'top10_loss_precision')} | "
            f"{f(window, 'baseline_volatility', 'top10_loss_precision')} | "
            f"{f(window, 'stack', 'rank_ic', '+.3f')} ({f(window, 'stack', 'rank_ic_t', '.1f')}) | "
            f"{f(window, 'baseline_volatility_model', 'rank_ic', '+.3f')} | "
            f"{f(window, 'stack', 'top10_win_precision_daily')} | "
            f"{f(window, 'baseline_volatility', 'top10_win_precision_daily')} |"
        )
    print("\npooled lifts of the stack (daily, Newey-West t):")
    for baseline in ("baseline_volatility", "baseline_volatility_model", "baseline_best_base"):
        print(
            f"  vs {baseline}: rank IC {f('pooled', baseline, 'lift_rank_ic', '+.4f')} "
            f"(t {f('pooled', baseline, 'lift_rank_ic_t', '.1f')}), top-10 % win/day "
            f"{f('pooled', baseline, 'lift_top10_win_precision_daily', '+.4f')} "
            f"(t {f('pooled', baseline, 'lift_top10_win_precision_daily_t', '.1f')})"
        )
    con = store.connect(db, read_only=True)
    try:
        for baseline, metric in (
            ("baseline_prior", "lift_log_loss"),
            ("baseline_best_base", "lift_log_loss"),
            ("baseline_volatility", "lift_top10_win_precision"),
        ):
            print(
                f"  {metric} vs {baseline} (95 % block bootstrap): "
                f"{interval(con, result.run_id, baseline, metric)}"
            )
    finally:
        con.close()
    positive = sum(1 for w in result.windows if (m[w.name]["stack"].get("rank_ic") or 0) > 0)
    print(f"  rank IC > 0 in {positive} of {len(result.windows)} windows")
    print(
        f"\nwall time {wall / 60:.1f} min, peak memory {watch.peak_pss / 2**30:.2f} GiB PSS "
        f"(RSS summed over the processes {peak / 2**30:.2f} GiB: the object store's pages "
        f"once per worker); report {result.report}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="store to (re)use (default: a temporary one)")
    parser.add_argument("--period", choices=sorted(PERIODS), default="benchmark")
    parser.add_argument("--only", choices=["final"], help="run the final recipe alone")
    parser.add_argument(
        "--universe", choices=["skill", "other", "other-long", "dev"], default="skill"
    )
    parser.add_argument(
        "--long",
        action="store_true",
        help="the long protocol: history from 2001, yearly windows (issue 23)",
    )
    parser.add_argument(
        "--rescore",
        metavar="RUN",
        help="with --long: re-score that finished run's fits with today's measures, fit nothing",
    )
    args = parser.parse_args()
    start, end = PERIODS[args.period]
    if not (SHARED / "sp500_daily.parquet").exists():
        raise SystemExit(f"needs {SHARED}/sp500_daily.parquet (../shared beside the repo)")

    from features.cache import configure_numba_cache

    configure_numba_cache()
    from stockml import store
    from stockml.logs import configure_logging, log_path_for
    from training.ablation import COLUMNS, ablation_rows, run_ablation

    db = args.db or Path(tempfile.mkdtemp(prefix="bench_skill_")) / "skill.duckdb"
    configure_logging(log_path_for(db))
    if args.long:
        which = {"other": "other-long"}.get(args.universe, args.universe)
        long_protocol(db, which, args.rescore)
        return
    ingest_s = build_store(db, start, end, args.universe) if not db.exists() else 0.0
    started = time.perf_counter()
    timings = []
    import training.ablation as ablation

    original = ablation.run_training

    def timed(*a, **k):
        t = time.perf_counter()
        result = original(*a, **k)
        timings.append(time.perf_counter() - t)
        return result

    ablation.run_training = timed
    variants = ablation.VARIANTS[-1:] if args.only else ablation.VARIANTS
    from training.config import TrainConfig

    runs = run_ablation(db, TrainConfig.create("swing"), progress=True, variants=variants)
    total = time.perf_counter() - started

    print()
    print(
        f"82 real stocks ({args.universe} universe), {args.period} period, samples {start} .. "
        f"{end}; store {db}"
    )
    print(f"ingest through the fixture server: {ingest_s:.1f} s")
    print()
    print("this project, pooled over 4 walk-forward test windows:")
    header = "| run | " + " | ".join(COLUMNS.values()) + " | wall s |"
    print(header)
    print("| --- |" + " --- |" * (len(COLUMNS) + 1))
    for i, (label, m) in enumerate(ablation_rows(runs)):
        cells = [
            "–" if m.get(c) is None or m.get(c) != m.get(c) else f"{m[c]:.3f}" for c in COLUMNS
        ]
        wall = f"{timings[i]:.0f}" if i < len(timings) else ""
        print(f"| {label} | " + " | ".join(cells) + f" | {wall} |")
    if args.period == "benchmark" and args.universe == "skill":
        print()
        print("anchor rows quoted in the issue (one date split, last 20 % of days):")
        print("| row | accuracy | log loss | top-10 % win precision |")
        print("| --- | --- | --- | --- |")
        for row, acc, ll, top in ANCHORS:
            cells = ["–" if v is None else f"{v:.3f}" for v in (acc, ll, top)]
            print(f"| {row} | " + " | ".join(cells) + " |")
    final = runs[-1][1]
    con = store.connect(db, read_only=True)
    try:
        print()
        print(f"final stack ({final.run_id}), lift with 95 % block-bootstrap interval:")
        print(
            "  log loss vs class prior:        ",
            interval(con, final.run_id, "baseline_prior", "lift_log_loss"),
        )
        print(
            "  log loss vs best base model:    ",
            interval(con, final.run_id, "baseline_best_base", "lift_log_loss"),
        )
        print(
            "  top-10 % precision vs natr_14:  ",
            interval(con, final.run_id, "baseline_volatility", "lift_top10_win_precision"),
        )
    finally:
        con.close()
    print(f"\nwall time: {total:.0f} s ({len(runs)} runs); final report: {final.report}")


if __name__ == "__main__":
    main()
