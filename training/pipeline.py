"""The training run: samples -> date split -> purged out-of-fold fits -> stack -> report.

Honesty rules, in order:
1. split by trading date: the last 20% of days is the test period; H days before it are
   purged (split.py);
2. base models are fitted on purged, time-ordered folds of the training period; the
   meta-learner learns only from their out-of-fold probabilities;
3. base models are refitted on the whole training period;
4. the test period is predicted once, at the end, for the report. Nothing fitted ever sees
   a test label (a test proves it).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from stockml import __version__, store
from stockml.errors import NothingToDoError
from stockml.progress import progress_bar
from training.models import BASE_MODELS, META
from training.ray_runner import FitJob, load_predictions, run_fits, run_fits_serial, save_model
from training.split import purged_kfold, split_by_date

CLASSES = np.array([-1, 0, 1])
FOLDS = 5
SEED = 7


@dataclass
class Samples:
    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    symbols: np.ndarray
    columns: list[str]


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, dict[str, float]]
    report: Path


def load_samples(con: Any, profile: str) -> Samples:
    from features.catalog import COLUMNS

    frame = store.query_pl(
        con,
        "SELECT * FROM samples WHERE profile = ? AND label IS NOT NULL ORDER BY date, symbol",
        [profile],
    )
    # Rows still inside some feature's warm-up (the history fetched before --start) are
    # not samples: every trained-on day carries all 179 features.
    frame = frame.drop_nulls(COLUMNS)
    if frame.is_empty():
        raise NothingToDoError(
            f"no labelled samples for profile {profile!r}: run `stockml ingest` first "
            "(training needs at least a few months of prices)"
        )
    x = frame.select(COLUMNS).to_numpy().astype(np.float64)
    return Samples(
        x=x,
        y=frame["label"].to_numpy().astype(np.int64),
        dates=frame["date"].to_numpy(),
        symbols=frame["symbol"].to_numpy(),
        columns=COLUMNS,
    )


def fingerprint(samples: Samples, params: dict) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(samples.y).tobytes())
    digest.update(np.nan_to_num(samples.x[:: max(1, len(samples.x) // 2000)]).tobytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def stack_and_evaluate(
    samples: Samples,
    horizon: int,
    run_dir: Path,
    ray_address: str | None,
    progress: bool,
    models,
    serial: bool = False,
) -> tuple[dict, dict, dict]:
    """Out-of-fold fits, meta-learner, refits, one prediction of the test period."""
    split = split_by_date(samples.dates, horizon)
    train_rows = np.flatnonzero(np.isin(samples.dates, split.train))
    test_rows = np.flatnonzero(np.isin(samples.dates, split.test))
    if len(train_rows) < 50 or len(test_rows) < 10 or len(np.unique(samples.y[train_rows])) < 3:
        raise NothingToDoError(
            f"too few samples to train on ({len(train_rows)} training, {len(test_rows)} test rows, "
            "all three outcomes needed): ingest a longer history or more symbols"
        )
    x_train, y_train = samples.x[train_rows], samples.y[train_rows]
    train_dates = samples.dates[train_rows]
    folds = purged_kfold(split.train, FOLDS, horizon)
    jobs: list[FitJob] = []
    for name in models:
        for k, (fit_days, valid_days) in enumerate(folds):
            jobs.append(
                FitJob(
                    name,
                    str(k),
                    np.flatnonzero(np.isin(train_dates, fit_days)),
                    np.flatnonzero(np.isin(train_dates, valid_days)),
                )
            )
        jobs.append(FitJob(name, "full", np.arange(len(train_rows)), np.arange(len(test_rows))))
    fits_dir = run_dir / "fits"
    fits_dir.mkdir(parents=True, exist_ok=True)
    with progress_bar("train", len(jobs), progress) as bar:

        def done(name: str, skipped: bool) -> None:
            bar.advance(1, status=f"{name}{' (checkpoint)' if skipped else ''}")

        targets = {"train": x_train, "full": samples.x[test_rows]}
        if serial:
            run_fits_serial(jobs, x_train, y_train, targets, fits_dir, SEED, done)
        else:
            run_fits(jobs, x_train, y_train, targets, fits_dir, ray_address, SEED, done)
    oof = np.full((len(train_rows), 3 * len(models)), np.nan)
    test_base = np.empty((len(test_rows), 3 * len(models)))
    for j, name in enumerate(models):
        for job in (jb for jb in jobs if jb.model == name):
            proba = load_predictions(fits_dir, job)
            if job.fold == "full":
                test_base[:, 3 * j : 3 * j + 3] = proba
            else:
                oof[job.predict_rows, 3 * j : 3 * j + 3] = proba
    meta = META(1, SEED).fit(oof, y_train)  # out-of-fold probabilities of the training period only
    save_model(run_dir, "meta", meta)
    predictions = {name: test_base[:, 3 * j : 3 * j + 3] for j, name in enumerate(models)}
    predictions["stack"] = meta.predict_proba(test_base)
    info = {
        "train_start": split.train[0],
        "train_end": split.train[-1],
        "test_start": split.test[0],
        "test_end": split.test[-1],
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "meta": meta,
    }
    return predictions, {"y_test": samples.y[test_rows], "y_train": y_train}, info


def run_training(
    db_path: Path,
    profile: str = "swing",
    ray_address: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    models: list[str] | None = None,
    serial: bool = False,
) -> RunResult:
    """Refresh the sample store if stale, then train, stack, evaluate and record a run.
    `serial` runs the same fits in this process without Ray (the benchmark's baseline)."""
    from backtest.labels import refresh_labels, resolve_profile
    from features.compute import refresh_features
    from training.plots import write_plots
    from training.report import evaluate, random_split_audit, write_report

    log = structlog.get_logger("training")
    chosen = resolve_profile(profile)
    models = list(models or BASE_MODELS)
    con = store.connect(db_path)
    try:
        if not store.prices_fingerprints(con):
            raise NothingToDoError(f"no prices in {db_path}: run `stockml ingest` first")
        refresh_features(con, progress=progress)
        refresh_labels(con, chosen, progress=progress)
        samples = load_samples(con, chosen.name)
        params = {"profile": chosen.params(), "models": models, "folds": FOLDS, "seed": SEED}
        run_id = fingerprint(samples, params)
        run_dir = db_path.parent / "runs" / run_id
        if fresh and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        started = time.perf_counter()
        predictions, truth, info = stack_and_evaluate(
            samples, chosen.hold_days, run_dir, ray_address, progress, models, serial
        )
        np.save(run_dir / "test_probabilities.npy", predictions["stack"])
        metrics = {
            name: evaluate(truth["y_test"], proba, truth["y_train"])
            for name, proba in predictions.items()
        }
        audit = random_split_audit(
            samples, models[0] if "lightgbm" not in models else "lightgbm", SEED
        )
        plots = write_plots(run_dir, metrics, audit, truth["y_test"], predictions["stack"])
        report = write_report(run_dir, run_id, chosen, info, metrics, audit, plots)
        elapsed = time.perf_counter() - started
        store.record_training_run(
            con,
            run_id,
            chosen.name,
            info,
            fingerprint=run_id,
            code_version=__version__,
            params=json.dumps(params),
            run_dir=str(run_dir),
            metrics={**metrics, "audit_random_split": audit},
        )
        log.info(
            "training_done",
            run_id=run_id,
            seconds=round(elapsed, 1),
            **{f"{k}_accuracy": round(v["accuracy"], 4) for k, v in metrics.items()},
        )
    finally:
        con.close()
    return RunResult(run_id, run_dir, metrics, report)
