"""The training run, as its recipe reads: samples -> walk-forward blocks -> base fits on
Ray -> one stack per test window -> evaluation -> report -> the live signal model -> the
record.

Honesty rules, in order:
1. split by trading date into blocks (walkforward.py); the last 20% of days are K test
   windows; every model that predicts a block was fitted only on days ending H trading days
   before the block starts (purge);
2. each window's stack learns from forward out-of-fold probabilities of its own training
   period: which base models it reads and their weights (ensemble selection), its
   calibration and decision thresholds are chosen on that period (thresholds on
   cross-fitted stack probabilities), never on a test window; base-model settings (the
   tuning grid) are chosen on the inner blocks, before the first window; sample weights
   count only each fit's own training labels;
3. every window is predicted once, by its own stack, and evaluated; nothing fitted or
   chosen ever sees a test label (a test proves it);
4. the live signal model (base models, stack weights, calibration, thresholds) is then
   refitted on every labelled day, the same way, for `stockml signals`.

A run is built from one TrainConfig (training/config.py); its id is the digest of the
config and the samples, and everything it writes goes through its RunFolder
(training/recorder.py), the store's rows last (training/record.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from stockml import store
from stockml.errors import Interrupted, NothingToDoError
from stockml.progress import progress_bar
from training.config import TrainConfig
from training.dataset import Samples, load_samples
from training.folds import FitJob, fit_jobs, tuning_jobs
from training.recorder import RunFolder, runs_root
from training.walkforward import Layout, plan_layout
from training.windows import Window, stack_windows


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, dict[str, float]]  # model -> metric -> value, pooled test windows
    report: Path
    windows: list[Window] = field(default_factory=list)
    profile: str = ""  # the label profile in words
    without_samples: list[str] = field(default_factory=list)
    tuning: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> choice
    config: TrainConfig | None = None
    verdict: list[str] = field(default_factory=list)  # per side: trade it or not, and why


def refresh_inputs(con: Any, config: TrainConfig, progress: bool, memory_limit) -> None:
    """Bring features, context and the profile's labels up to date with the prices."""
    from backtest.labels import refresh_labels
    from features.compute import refresh_features
    from features.context_refresh import refresh_context

    refresh_features(con, progress=progress, memory_limit=memory_limit)
    refresh_context(con, progress=progress, memory_limit=memory_limit)
    refresh_labels(con, config.profile, progress=progress, memory_limit=memory_limit)


def check_symbols(con: Any, config: TrainConfig) -> None:
    """The training and traded universes name stored symbols only, and every traded symbol
    is trained on. Raises InputError naming the others."""
    from stockml.errors import InputError

    stored = {r[0] for r in con.execute("SELECT DISTINCT symbol FROM prices").fetchall()}
    for flag, symbols in (
        ("--train-symbols", config.train_symbols),
        ("--symbols", config.traded_symbols),
    ):
        missing = sorted(set(symbols or ()) - stored)
        if missing:
            raise InputError(
                f"{flag} names symbols with no stored prices: {', '.join(missing[:10])}"
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            )
    if config.train_symbols and config.traded_symbols:
        untrained = sorted(set(config.traded_symbols) - set(config.train_symbols))
        if untrained:
            raise InputError(
                f"--symbols trades what --train-symbols leaves out: {', '.join(untrained[:10])}"
            )


def data_text(con: Any, config: TrainConfig, samples: Samples) -> str:
    """What the run trains on, in words, for the report."""
    from training.sampling import labelled_count

    text = f"{len(samples.y):,} labelled stock-days of {len(np.unique(samples.symbols)):,} symbols"
    if config.traded_symbols:
        text += f"; trades and test figures cover {len(config.traded_symbols):,} of them"
    if config.max_samples is not None:
        train = list(config.train_symbols) if config.train_symbols else None
        labelled = labelled_count(con, config.profile.name, train)
        if labelled > len(samples.y):
            text += (
                f", a date-stratified sample of the store's {labelled:,} (--max-samples "
                f"{config.max_samples:,}: each day keeps its share, training/sampling.py)"
            )
    return text


def walk_forward(samples: Samples, config: TrainConfig) -> tuple[Layout, np.ndarray]:
    """The walk-forward blocks of the samples and each row's trading-day index. Raises
    NothingToDoError when the samples are too few or lack an outcome."""
    try:
        lay = plan_layout(
            samples.dates,
            config.horizon,
            config.windows,
            config.inner_blocks,
            config.test_fraction,
            config.min_train_years,
        )
    except ValueError as exc:
        raise NothingToDoError(f"too few samples to train on: {exc}") from exc
    day_index = np.searchsorted(lay.days, samples.dates)
    if len(np.unique(samples.y[day_index < lay.fit_end(lay.first_window)])) < 3:
        raise NothingToDoError(
            "too few samples to train on: all three outcomes are needed in the training "
            "period: ingest a longer history or more symbols"
        )
    return lay, day_index


def run_id_of(config: TrainConfig, samples: Samples) -> str:
    """The run id: 16 hex digits of the SHA-256 of the config's and the samples' digests."""
    import hashlib

    text = f"{config.digest()}:{samples.fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fit_id_of(config: TrainConfig, samples: Samples) -> str:
    """The fit set's id: the first 16 hex digits of the SHA-256 of the config's fit digest
    (`TrainConfig.fit_digest`: the config less its rules and traded symbols) and the
    samples' fingerprint. Runs that differ only in rules or traded symbols share it, and so
    their fits."""
    import hashlib

    text = f"fits:{config.fit_digest()}:{samples.fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def adopt_earlier_fits(run, fit_id: str, progress: bool) -> int:
    """Take the finished fits of earlier runs of fit set `fit_id` into `run` (a changed
    cost or traded universe refits nothing); says so on the console and in the log.
    Returns how many were taken."""
    taken = 0
    for source in run.same_fits(fit_id):
        count = run.adopt_fits(source)
        if count:
            structlog.get_logger("training").info(
                "fits_adopted", run_id=run.run_id, source=source.run_id, fits=count
            )
            if progress:
                from stockml.progress import console

                console.print(
                    f"run {run.run_id}: {count} fits taken from run {source.run_id}, which "
                    "fitted the same models on the same samples (only rules or traded "
                    "symbols differ)"
                )
        taken += count
    return taken


def fit_all(
    config: TrainConfig,
    samples: Samples,
    lay: Layout,
    day_index: np.ndarray,
    run: RunFolder,
    lives: np.ndarray | None,
    progress: bool,
    ray_address: str | None,
    serial: bool,
) -> tuple[list[FitJob], dict[str, dict], list[FitJob]]:
    """Tuning first (every candidate on the inner blocks), then every fit with the chosen
    settings; a fit both phases need runs once. Returns the final fit jobs, the tuning
    choice per model and every job run. Ctrl-C raises Interrupted saying what was kept."""
    from training.fit_progress import FitProgress
    from training.ray_runner import run_fits, run_fits_serial
    from training.tuning import choose_settings

    log = structlog.get_logger("training")
    tuning = tuning_jobs(config, lay, day_index)
    # A resumed run whose tuning fits are all kept knows its choice already: count what
    # is kept against the fits it will make, not against the default candidates'.
    known: dict[str, int] = {}
    if config.recipe.tune and tuning and all(run.fit_done(j.name) for j in tuning):
        known = {
            m: t["chosen"]
            for m, t in choose_settings(config, samples.y, lay, day_index, run).items()
        }
    planned = {j.name: j for j in [*tuning, *fit_jobs(config, lay, day_index, known)]}
    kept = run.finished_fits(list(planned))
    if kept:
        message = f"resuming run {run.run_id}: {len(kept)} of {len(planned)} fits done"
        log.info("training_resumed", run_id=run.run_id, done=len(kept), planned=len(planned))
        if progress:
            from stockml.progress import console

            console.print(message)
    every: dict[str, FitJob] = {}
    settings: dict[str, dict] = {}
    shared: dict = {}  # the matrix's object-store references, put once for both batches
    try:
        with progress_bar("train", len(planned), progress) as bar:
            # fits at a time: one serial, a local Ray's cores, a cluster's unknown here
            cluster = ray_address or os.environ.get("RAY_ADDRESS")
            workers = 1 if serial else None if cluster else os.cpu_count()
            done = FitProgress(bar, log, workers)
            done.plan(list(planned.values()))

            def run_batch(batch: list[FitJob]) -> None:
                every.update((j.name, j) for j in batch)
                if serial:
                    run_fits_serial(batch, samples.x, samples.y, run, config.seed, done, lives)
                else:
                    run_fits(
                        batch,
                        samples.x,
                        samples.y,
                        run,
                        ray_address,
                        config.seed,
                        done,
                        lives,
                        shared,
                    )

            run_batch(tuning)
            chosen: dict[str, int] = {}
            if config.recipe.tune:
                settings = choose_settings(config, samples.y, lay, day_index, run)
                chosen = {m: t["chosen"] for m, t in settings.items()}
            jobs = fit_jobs(config, lay, day_index, chosen)
            done.plan([*tuning, *jobs])
            run_batch(jobs)
    except KeyboardInterrupt:
        finished = len(run.finished_fits(list({**planned, **every})))
        raise Interrupted(
            f"interrupted: run {run.run_id} kept {finished} finished fits in {run.fits}; "
            "rerun the same command to resume"
        ) from None
    return jobs, settings, list(every.values())


def run_training(
    db_path: Path,
    config: TrainConfig,
    ray_address: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    serial: bool = False,
    memory_limit: int | str | None = None,
) -> RunResult:
    """Refresh the sample store if stale, then fit, stack and evaluate every walk-forward
    window, refit the live signal model, and record the run. `config` says what the run
    is (training/config.py); the rest how it executes: `ray_address` a cluster (else a
    local Ray), `fresh` drops the run's checkpoints first, `serial` runs the same fits in
    this process without Ray (the benchmark's baseline), `memory_limit` bounds the
    refreshes and DuckDB (stockml.memory)."""
    from stockml.memory import MemoryBudget
    from training.audit import audit_beside
    from training.evaluation import evaluate_windows
    from training.plots import write_plots
    from training.record import metric_rows, record_run, run_info, run_notes
    from training.report import ReportData, write_report
    from training.rules import book_trades, choose_rule
    from training.trading import equity_curves, track_record, trade_windows, trading_metrics

    log = structlog.get_logger("training")
    con = store.connect(db_path)
    try:
        if not store.prices_fingerprints(con):
            raise NothingToDoError(f"no prices in {db_path}: run `stockml ingest` first")
        refresh_inputs(con, config, progress, memory_limit)
        # The user's limit, not only the connection's default, for every query of the run:
        # reading a sample through the `samples` view joins whole tables (at 5,000 x 20 y,
        # 19.9 GiB with DuckDB unbounded, 2.1 GiB bounded: it spills).
        MemoryBudget.of(memory_limit).bound_duckdb(con)
        check_symbols(con, config)
        samples = load_samples(
            con,
            config.profile.name,
            context=config.recipe.context,
            max_samples=config.max_samples,
            symbols=list(config.train_symbols) if config.train_symbols else None,
        )
        lay, day_index = walk_forward(samples, config)
        run_id, fit_id = run_id_of(config, samples), fit_id_of(config, samples)
        run = RunFolder.create(runs_root(db_path), run_id, config, fresh, len(samples.y), fit_id)
        if not fresh:
            adopt_earlier_fits(run, fit_id, progress)
        started = time.perf_counter()
        # Each row's label life; every fit weights its rows by uniqueness among its own
        # training rows only (training/weights.py), so no purged or test label counts.
        lives = samples.label_lives(day_index) if config.recipe.weights else None
        MemoryBudget.idle_duckdb(con)  # the fits read no table: give its cache back
        jobs, tuning, every = fit_all(
            config, samples, lay, day_index, run, lives, progress, ray_address, serial
        )
        MemoryBudget.of(memory_limit).bound_duckdb(con)
        # What every sample row's trade would have done (next-open entry, barrier exits,
        # costs): the rules are chosen on it and the test windows are traded with it.
        book = book_trades(con, samples, config.profile, config.rules)
        models = config.model_names
        audit_model = "lightgbm" if "lightgbm" in models else models[0]
        audit_result = audit_beside(samples, audit_model, config.seed)
        windows, live, oof = stack_windows(
            samples, lay, day_index, run, config, jobs, progress, lives, book
        )

        def rule_of(proba: np.ndarray, rows: np.ndarray):
            span = f"{samples.dates[rows[0]]} .. {samples.dates[rows[-1]]}"
            return choose_rule(proba, rows, book, config.rules, span)

        evaluation = evaluate_windows(samples, lay, windows, oof, models, rule_of)
        traded = trade_windows(samples, lay, windows, evaluation, book, config, run_id)
        record = track_record(traded, evaluation, samples)
        audit = audit_result()
        plots = write_plots(run, evaluation, samples, traded, audit, lay.horizon)
        recipe = f"{config.recipe.describe()}; trained on {data_text(con, config, samples)}"
        report = write_report(
            run,
            ReportData(
                run_id,
                config.profile,
                lay,
                windows,
                evaluation.by_window,
                evaluation.intervals,
                record,
                audit,
                audit_model,
                models,
                recipe,
                tuning,
                evaluation.ranking_lifts,
                traded,
                live.rule,
                config.rules,
                config.refit_every,
            ),
            plots,
        )
        run.save_model("signal_model", live)
        run.save_json("track_record", record)
        run.save_array("test_probabilities", np.vstack([w.proba["stack"] for w in windows]))
        record_run(
            con,
            run,
            config,
            run_info(samples, lay, day_index, windows),
            metric_rows(evaluation, windows, audit, tuning, models, live.rule)
            + trading_metrics(traded),
            traded.trades,
            [run.fit_record(j.name) for j in every],
            len(samples.y),
            equity_curves(traded, run_id),
            run_notes(windows, live.rule, traded),
        )
        log.info(
            "training_done",
            run_id=run_id,
            seconds=round(time.perf_counter() - started, 1),
            windows=len(windows),
            stack_accuracy=round(evaluation.by_window["pooled"]["stack"]["accuracy"], 4),
        )
    finally:
        store.close(con)
    pooled = {name: dict(values) for name, values in evaluation.by_window["pooled"].items()}
    for name, sides in traded.results.items():
        for result in sides.values():
            pooled[name].update(result.figures)
    return RunResult(
        run_id,
        run.path,
        pooled,
        report,
        windows,
        config.profile.describe(),
        samples.without_samples,
        tuning,
        config,
        [traded.verdict[side][1] for side in sorted(traded.verdict, reverse=True)],
    )
