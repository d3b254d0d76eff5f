"""The training run: samples -> walk-forward blocks -> base fits on Ray -> one stack per
test window -> thresholds -> evaluation -> the live signal model.

Honesty rules, in order:
1. split by trading date into blocks (walkforward.py); the last 20% of days are K test
   windows; every model that predicts a block was fitted only on days ending H trading days
   before the block starts (purge);
2. each window's stack learns from forward out-of-fold probabilities of its own training
   period: which base models it reads and their weights (ensemble selection), its
   calibration and decision thresholds are chosen on that period (thresholds on
   cross-fitted stack probabilities), never on a test window;
   base-model settings (the tuning grid) are chosen on the inner blocks, before the first
   window; sample weights count only each fit's own training labels;
3. every window is predicted once, by its own stack, and evaluated; nothing fitted or
   chosen ever sees a test label (a test proves it);
4. the live signal model (base models, stack weights, calibration, thresholds) is then
   refitted on every labelled day, the same way, for `stockml signals`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from stockml import __version__, store
from stockml.defaults import DEFAULT_PROFILE
from stockml.errors import NothingToDoError
from stockml.progress import progress_bar
from training import tuning
from training.calibration import CalibrationChoice, choose_calibration, uncalibrated
from training.models import BASE_MODELS, META, EnsembleSelection, fit_model
from training.ray_runner import (
    FitJob,
    checkpoint_name,
    fit_records,
    load_model,
    load_predictions,
    run_fits,
    run_fits_serial,
    save_model,
    weights_of,
)
from training.selection import Selection, select_ensemble
from training.stack import SignalModel, StackedModel, training_reference
from training.trades import MAX_COVERAGE, MIN_COVERAGE, choose_thresholds, decide
from training.walkforward import Layout, cross_fitted, layout, meta_rows

INNER_BLOCKS = 5
SEED = 7
WINDOWS = 4


@dataclass
class Samples:
    """Labelled stock-days, ordered by (date, symbol): x (n, 179) float64 features,
    y (n,) labels, and what evaluation in trade terms needs."""

    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    symbols: np.ndarray
    columns: list[str]
    exit_return: np.ndarray
    exit_offset: np.ndarray
    without_samples: list[str] = field(default_factory=list)  # why a symbol gave none

    def column(self, name: str) -> np.ndarray:
        return self.x[:, self.columns.index(name)]


@dataclass
class Decision:
    """What one stack decided with: thresholds and calibration chosen on its training
    period (cross-fitted probabilities), and why."""

    t_call: float
    t_put: float
    calibration: CalibrationChoice
    call_reason: str
    put_reason: str


@dataclass
class Window:
    """One test window: its rows, every model's probabilities, the stack's decisions."""

    number: int
    rows: np.ndarray
    train_days: tuple[Any, Any]
    n_train: int
    proba: dict[str, np.ndarray]
    signals: np.ndarray
    decision: Decision
    kept: list[str] = field(default_factory=list)  # base models the stack reads
    selection: dict[str, str] = field(default_factory=dict)  # model -> why kept or not
    weights: dict[str, float] = field(default_factory=dict)  # model -> ensemble weight


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, dict[str, float]]
    report: Path
    windows: list[Window] = field(default_factory=list)
    profile: str = ""  # the label profile in words
    without_samples: list[str] = field(default_factory=list)
    tuning: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> choice


@dataclass(frozen=True)
class Recipe:
    """What a training run learns from and how: the ablation's variables.

    context: the market, sector and cross-sectional columns (features/context.csv) beside
    the 179 catalog features; weights: rows weighted by their label's average uniqueness
    (training/weights.py); select: each stack is the weighted mean ensemble selection
    fits on its training period (training/selection.py), else a meta-learner reading
    every base model; tune: each base model's settings chosen from a small grid on the
    inner blocks (training/tuning.py)."""

    context: bool = True
    weights: bool = True
    select: bool = True
    tune: bool = True

    def params(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "weights": self.weights,
            "select": self.select,
            "tune": self.tune,
        }

    def describe(self) -> str:
        parts = ["catalog features"]
        if self.context:
            parts.append("context")
        if self.weights:
            parts.append("uniqueness weights")
        if self.tune:
            parts.append("tuned settings")
        if self.select:
            parts.append("ensemble selection")
        return " + ".join(parts)


def load_samples(
    con: Any, profile: str, context: bool = True, max_samples: int | None = None
) -> Samples:
    """Every labelled day carrying all catalog features, with the context columns when
    `context` and the store has them (NULL context values, inside a window's warm-up,
    stay NaN: every model imputes or handles them). Symbols that give none are logged and,
    when no sample is left, named in the error; a +-inf feature (from a store computed
    before features were guarded) is refused with the symbol, date and feature."""
    from features.catalog import COLUMNS
    from features.context import CONTEXT_COLUMNS
    from features.coverage import uncovered_symbols
    from stockml.errors import InputError
    from training.sampling import read_samples

    # Over `max_samples` labelled days: a date-stratified sample, drawn in SQL.
    frame = read_samples(con, profile, max_samples)
    # Rows still inside some feature's warm-up (the history fetched before --start) are
    # not samples: every trained-on day carries all 179 features.
    labelled = frame.height
    frame = frame.drop_nulls(COLUMNS)
    uncovered = uncovered_symbols(con) if labelled else []
    log = structlog.get_logger("training")
    for item in uncovered:
        log.warning(
            "symbol_without_samples",
            symbol=item.symbol,
            zero_volume=item.zero_volume,
            always_null=list(item.always_null),
        )
    if frame.is_empty():
        if uncovered:
            raise NothingToDoError(
                f"no labelled samples with every feature for profile {profile!r}: "
                + "; ".join(item.reason() for item in uncovered)
            )
        raise NothingToDoError(
            f"no labelled samples for profile {profile!r}: run `stockml ingest` first "
            "(training needs at least a few months of prices)"
        )
    columns = list(COLUMNS)
    if context and all(c in frame.columns for c in CONTEXT_COLUMNS):
        columns += CONTEXT_COLUMNS
    x = frame.select(columns).to_numpy().astype(np.float64)
    infinite = np.isinf(x)
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise InputError(
            f"feature {columns[col]} is {x[row, col]} for {frame['symbol'][int(row)]} on "
            f"{frame['date'][int(row)]} ({int(infinite.sum())} infinite values in all): "
            "recompute the features with `stockml features` (this version stores NULL there)"
        )
    return Samples(
        x=x,
        y=frame["label"].to_numpy().astype(np.int64),
        dates=frame["date"].to_numpy(),
        symbols=frame["symbol"].to_numpy(),
        columns=columns,
        exit_return=frame["exit_return"].to_numpy().astype(np.float64),
        exit_offset=frame["exit_offset"].to_numpy().astype(np.int64),
        without_samples=[item.reason() for item in uncovered],
    )


def fingerprint(samples: Samples, params: dict) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(samples.y).tobytes())
    digest.update(np.nan_to_num(samples.x[:: max(1, len(samples.x) // 2000)]).tobytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def block_job(
    lay: Layout,
    day_index: np.ndarray,
    model: str,
    block: int,
    candidate: int = 0,
    weighted: bool = False,
) -> FitJob:
    """The fit of `model` (tuning candidate `candidate` of a run `weighted` or not) on the
    days before `block`, less the purge, predicting the block."""
    start, end = lay.bounds[block], lay.bounds[block + 1]
    train = np.flatnonzero(day_index < lay.fit_end(block))
    predict = np.flatnonzero((day_index >= start) & (day_index < end))
    overrides = tuning.as_params(tuning.candidates(model, weighted)[candidate])
    return FitJob(model, f"b{block}{tuning.tag(candidate)}", train, predict, overrides)


def fit_jobs(
    lay: Layout,
    day_index: np.ndarray,
    models: list[str],
    chosen: dict[str, int] | None = None,
    weighted: bool = False,
) -> list[FitJob]:
    """Per model, with its chosen tuning candidate (default: 0): one fit per block from 1
    on (days before the block, purged; predicts the block) and the live fit on every
    labelled day (predicts nothing)."""
    chosen = chosen or {}
    jobs = []
    for name in models:
        i = chosen.get(name, 0)
        jobs += [block_job(lay, day_index, name, b, i, weighted) for b in range(1, lay.n_blocks)]
        overrides = tuning.as_params(tuning.candidates(name, weighted)[i])
        live = FitJob(name, f"live{tuning.tag(i)}", np.arange(len(day_index)), np.arange(0))
        jobs.append(FitJob(live.model, live.fold, live.train_rows, live.predict_rows, overrides))
    return jobs


def tuning_jobs(
    lay: Layout, day_index: np.ndarray, models: list[str], weighted: bool = False
) -> list[FitJob]:
    """Every candidate of every model on the inner blocks (before the first test window)."""
    return [
        block_job(lay, day_index, name, b, i, weighted)
        for name in models
        for i in range(len(tuning.candidates(name, weighted)))
        for b in range(1, lay.first_window)
    ]


def choose_settings(
    models: list[str],
    y: np.ndarray,
    lay: Layout,
    day_index: np.ndarray,
    fits: Path,
    weighted: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per model, the candidate whose inner-block fits (`tuning_jobs`, finished) have the
    lowest forward out-of-fold log loss on the rows whose labels end before the first test
    window (see training/tuning.py)."""
    rows = meta_rows(lay, day_index, lay.first_window)
    out = {}
    for model in models:
        predictions = {}
        grid = tuning.candidates(model, weighted)
        for i in range(len(grid)):
            proba = np.full((len(y), 3), np.nan)
            for block in range(1, lay.first_window):
                job = block_job(lay, day_index, model, block, i, weighted)
                proba[job.predict_rows] = load_predictions(fits, job)
            predictions[i] = proba
        chosen, scores = tuning.choose(predictions, y, rows)
        out[model] = {
            "chosen": chosen,
            "params": grid[chosen],
            "candidates": grid,
            "scores": scores,
        }
    return out


def choose_decision(
    oof: np.ndarray, y: np.ndarray, day_index: np.ndarray, rows: np.ndarray, horizon: int
) -> Decision:
    """Calibration and thresholds from cross-fitted meta-learner probabilities of `rows`."""
    proba = cross_fitted(lambda: META(1, SEED), oof, y, day_index, rows, horizon)
    return decide_from(proba, y, day_index, rows, horizon)


def decide_from(
    proba: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    calibrate: bool = True,
) -> Decision:
    """Calibration (when `calibrate`: isotonic, kept where it helps) and thresholds from
    out-of-sample probabilities `proba` of `rows` (e.g. the ensemble's, cross-fitted over
    the training period)."""
    if calibrate:
        calibration = choose_calibration(proba, y[rows], day_index[rows], horizon)
        if calibration.calibrator is not None:
            proba = calibration.calibrator.transform(proba)
    else:
        calibration = uncalibrated(proba, y[rows], "the weighted mean's")
    call, put = choose_thresholds(proba, y[rows], MIN_COVERAGE, MAX_COVERAGE)
    return Decision(call.threshold, put.threshold, calibration, call.reason, put.reason)


def label_lives(samples: Samples, day_index: np.ndarray) -> np.ndarray:
    """(n, 4) int64: each row's symbol code, trading-day index, exit offset and label,
    what `ray_runner.weights_of` needs to weight any subset of rows by label uniqueness
    (within each class)."""
    codes = np.unique(samples.symbols, return_inverse=True)[1]
    return np.column_stack([codes, day_index, samples.exit_offset, samples.y]).astype(np.int64)


def base_columns(kept: list[int]) -> np.ndarray:
    """Columns of the out-of-fold matrix holding the `kept` base models' probabilities."""
    return np.concatenate([np.arange(3 * j, 3 * j + 3) for j in kept])


@dataclass
class FittedStack:
    """One window's (or the live model's) stack: `combiner` reads the base models `reads`
    (indices, in model order) and was fitted on training `rows`; `selection` explains the
    weights when ensemble selection chose them."""

    combiner: Any
    decision: Decision
    rows: np.ndarray
    reads: list[int]
    selection: Selection | None = None


def fit_stack(
    oof: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    lay: Layout,
    block: int | None,
    lives: np.ndarray | None = None,
    select: bool = True,
):
    """The stack and decision of the window at `block` (None: the live model), fitted on
    the forward out-of-fold rows of its training period. With `select`, ensemble selection
    weights the base models (training/selection.py) and the stack reads those with a
    weight, uncalibrated; without, the multinomial meta-learner reads all of them
    (uniqueness-weighted when `lives` is given), isotonic calibration where it helps.
    Thresholds (and calibration) see cross-fitted probabilities of the same rows."""
    rows = meta_rows(lay, day_index, block)
    if select:
        whole, selection = select_ensemble(oof, y, rows)
        reads = selection.reads()
        x = oof[:, base_columns(reads)]
        proba = cross_fitted(EnsembleSelection, x, y, day_index, rows, lay.horizon)
        decision = decide_from(proba, y, day_index, rows, lay.horizon, calibrate=False)
        return FittedStack(whole.restricted(reads), decision, rows, reads, selection)
    weights = None if lives is None else weights_of(lives, rows)
    meta = fit_model(META(1, SEED), oof[rows], y[rows], weights)
    decision = choose_decision(oof, y, day_index, rows, lay.horizon)
    return FittedStack(meta, decision, rows, list(range(oof.shape[1] // 3)))


def stack_windows(
    samples: Samples,
    lay: Layout,
    day_index: np.ndarray,
    run_dir: Path,
    models: list[str],
    jobs: list[FitJob],
    progress: bool,
    lives: np.ndarray | None = None,
    select: bool = True,
) -> tuple[list[Window], SignalModel, np.ndarray]:
    """Every window's stack, its test probabilities and decisions; then the live signal
    model. Returns the windows, the live model and the forward out-of-fold matrix."""
    fits = run_dir / "fits"
    oof = np.full((len(samples.y), 3 * len(models)), np.nan)
    for job in jobs:
        if not job.fold.startswith("live"):
            j = models.index(job.model)
            oof[job.predict_rows, 3 * j : 3 * j + 3] = load_predictions(fits, job)
    live_names = {j.model: checkpoint_name(j) for j in jobs if j.fold.startswith("live")}
    windows = []
    with progress_bar("stack", len(lay.windows) + 1, progress) as bar:
        for block in lay.windows:
            fitted = fit_stack(oof, samples.y, day_index, lay, block, lives, select)
            decision = fitted.decision
            save_model(run_dir, f"meta__b{block}", fitted.combiner)
            rows = np.flatnonzero(lay.block_of(day_index) == block)
            proba = fitted.combiner.predict_proba(oof[np.ix_(rows, base_columns(fitted.reads))])
            if decision.calibration.calibrator is not None:
                proba = decision.calibration.calibrator.transform(proba)
            base = {m: oof[rows, 3 * j : 3 * j + 3] for j, m in enumerate(models)}
            days = lay.days[: lay.fit_end(block)]
            windows.append(
                Window(
                    lay.window_number(block),
                    rows,
                    (days[0], days[-1]),
                    len(fitted.rows),
                    {**base, "stack": proba},
                    decide(proba, decision.t_call, decision.t_put),
                    decision,
                    [models[j] for j in fitted.reads],
                    fitted.selection.reasons(models) if fitted.selection else {},
                    fitted.selection.named_weights(models) if fitted.selection else {},
                )
            )
            bar.advance(1, status=f"window {lay.window_number(block)}")
        fitted = fit_stack(oof, samples.y, day_index, lay, None, lives, select)
        stack = StackedModel.from_fitted(
            [(models[j], load_model(fits, live_names[models[j]])) for j in fitted.reads],
            fitted.combiner,
        )
        live = SignalModel(
            stack,
            fitted.decision.t_call,
            fitted.decision.t_put,
            fitted.decision.calibration.calibrator,
            columns=list(samples.columns),
            reference=training_reference(samples.x),
        )
        bar.advance(1, status="live model")
    return windows, live, oof


def run_training(
    db_path: Path,
    profile: Any = DEFAULT_PROFILE,
    ray_address: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    models: list[str] | None = None,
    serial: bool = False,
    windows: int = WINDOWS,
    max_samples: int | None = None,
    recipe: Recipe | None = None,
    memory_limit: int | str | None = None,
) -> RunResult:
    """Refresh the sample store if stale, then fit, stack and evaluate every walk-forward
    window, refit the live signal model, and record the run. `profile` is a profile name or
    a resolved `backtest.labels.Profile`; `serial` runs the same fits in this process
    without Ray (the benchmark's baseline); `max_samples` caps the samples trained on
    (training.sampling: stratified by date; the cap and the count go in the run's params);
    `memory_limit` bounds the refreshes of the sample store (stockml.memory)."""
    from backtest.labels import refresh_labels, resolve_profile
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from stockml.memory import MemoryBudget
    from training.evaluation import evaluate_run
    from training.sampling import labelled_count

    log = structlog.get_logger("training")
    chosen = resolve_profile(profile) if isinstance(profile, str) else profile
    models = list(models or BASE_MODELS)
    recipe = recipe or Recipe()
    con = store.connect(db_path)
    try:
        if not store.prices_fingerprints(con):
            raise NothingToDoError(f"no prices in {db_path}: run `stockml ingest` first")
        refresh_features(con, progress=progress, memory_limit=memory_limit)
        refresh_context(con, progress=progress, memory_limit=memory_limit)
        refresh_labels(con, chosen, progress=progress, memory_limit=memory_limit)
        # The user's limit, not only the connection's default, for every query of the run:
        # reading a sample through the `samples` view joins whole tables (at 5,000 x 20 y,
        # 19.9 GiB with DuckDB unbounded, 2.1 GiB bounded: it spills).
        MemoryBudget.of(memory_limit).bound_duckdb(con)
        samples = load_samples(con, chosen.name, context=recipe.context, max_samples=max_samples)
        params = {
            **recipe.params(),
            "profile": chosen.params(),
            "models": models,
            "inner_blocks": INNER_BLOCKS,
            "windows": windows,
            "min_coverage": MIN_COVERAGE,
            "max_coverage": MAX_COVERAGE,
            "seed": SEED,
        }
        data_text = (
            f"{len(samples.y):,} labelled stock-days of {len(np.unique(samples.symbols)):,} symbols"
        )
        if max_samples is not None:
            params.update(max_samples=max_samples, samples=len(samples.y))
            labelled = labelled_count(con, chosen.name)
            if labelled > len(samples.y):
                data_text += (
                    f", a date-stratified sample of the store's {labelled:,} (--max-samples "
                    f"{max_samples:,}: each day keeps its share, training/sampling.py)"
                )
        try:
            lay = layout(samples.dates, chosen.hold_days, windows, INNER_BLOCKS)
        except ValueError as exc:
            raise NothingToDoError(f"too few samples to train on: {exc}") from exc
        day_index = np.searchsorted(lay.days, samples.dates)
        if len(np.unique(samples.y[day_index < lay.fit_end(lay.first_window)])) < 3:
            raise NothingToDoError(
                "too few samples to train on: all three outcomes are needed in the training "
                "period: ingest a longer history or more symbols"
            )
        run_id = fingerprint(samples, params)
        run_dir = db_path.parent / "runs" / run_id
        if fresh and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        (run_dir / "fits").mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        # Each row's label life; every fit weights its rows by uniqueness among its own
        # training rows only (ray_runner.weights_of), so no purged or test label counts.
        lives = label_lives(samples, day_index) if recipe.weights else None
        fits = run_dir / "fits"
        # Tuning first (every candidate on the inner blocks), then every fit with the
        # settings chosen; a fit both phases need runs once (its checkpoint is reused).
        weighted = recipe.weights
        phases = [tuning_jobs(lay, day_index, models, weighted)] if recipe.tune else []
        planned = {checkpoint_name(j) for phase in phases for j in phase}
        planned |= {checkpoint_name(j) for j in fit_jobs(lay, day_index, models)}
        settings: dict[str, dict[str, Any]] = {}
        all_jobs: dict[str, FitJob] = {}
        with progress_bar("train", len(planned), progress) as bar:
            seen: set[str] = set()

            def done(name: str, skipped: bool) -> None:
                if name not in seen:
                    seen.add(name)
                    bar.advance(1, status=f"{name}{' (checkpoint)' if skipped else ''}")

            def run(batch: list[FitJob]) -> None:
                all_jobs.update((checkpoint_name(j), j) for j in batch)
                if serial:
                    run_fits_serial(batch, samples.x, samples.y, fits, SEED, done, lives)
                else:
                    run_fits(batch, samples.x, samples.y, fits, ray_address, SEED, done, lives)

            for phase in phases:
                run(phase)
            if recipe.tune:
                settings = choose_settings(models, samples.y, lay, day_index, fits, weighted)
                chosen_tags = {m: t["chosen"] for m, t in settings.items()}
                jobs = fit_jobs(lay, day_index, models, chosen_tags, weighted)
                extra = {checkpoint_name(j) for j in jobs} - planned
                bar.update(total=len(planned | extra))
            else:
                jobs = fit_jobs(lay, day_index, models)
            run(jobs)
        wins, live, oof = stack_windows(
            samples, lay, day_index, run_dir, models, jobs, progress, lives, recipe.select
        )
        evaluation = evaluate_run(
            con,
            samples,
            lay,
            wins,
            live,
            oof,
            chosen,
            run_id,
            run_dir,
            models,
            f"{recipe.describe()}; trained on {data_text}",
            settings,
        )
        save_model(run_dir, "signal_model", live)
        np.save(run_dir / "test_probabilities.npy", np.vstack([w.proba["stack"] for w in wins]))
        elapsed = time.perf_counter() - started
        info = {
            "train_start": lay.days[0],
            "train_end": lay.days[lay.fit_end(lay.first_window) - 1],
            "test_start": lay.days[lay.bounds[lay.first_window]],
            "test_end": lay.days[-1],
            "n_train": int(np.sum(day_index < lay.fit_end(lay.first_window))),
            "n_test": int(sum(len(w.rows) for w in wins)),
        }
        store.record_training_run(
            con,
            run_id,
            chosen.name,
            info,
            fingerprint=run_id,
            code_version=__version__,
            params=json.dumps(params),
            run_dir=str(run_dir),
            metrics=evaluation.metrics,
            trades=evaluation.trades,
            fits=fit_records(run_dir / "fits", list(all_jobs.values())),
        )
        log.info(
            "training_done",
            run_id=run_id,
            seconds=round(elapsed, 1),
            windows=windows,
            stack_accuracy=round(evaluation.pooled["stack"]["accuracy"], 4),
        )
    finally:
        store.close(con)
    return RunResult(
        run_id,
        run_dir,
        evaluation.pooled,
        evaluation.report,
        wins,
        chosen.describe(),
        samples.without_samples,
        settings,
    )
