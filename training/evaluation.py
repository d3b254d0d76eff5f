"""The walk-forward evaluation: every window and the pooled test rows, the stack beside the
model-free baselines, intervals from a block bootstrap over test dates, and every signal
as a trade (stock and option).

Baselines are scored on exactly the stack's test rows:
- `baseline_majority`: always the training period's most common outcome (accuracy);
- `baseline_prior`: the training period's class frequencies (log loss);
- `baseline_every_day`: a call on every stock-day (its call precision is the base rate);
- `baseline_volatility`, `baseline_momentum`: no model, stock-days ranked by `natr_14`
  (calls and puts both on the most volatile) and by 20-day return (calls on the strongest,
  puts on the weakest), as many calls and puts per window as the stack made, and the top
  10 % by the same score for the top-decile win precision;
- `baseline_best_base`: the base model with the lowest out-of-fold log loss on the
  window's training period (chosen there, never on the test window), with thresholds
  chosen on its out-of-fold probabilities like the stack's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from stockml.defaults import CLASSES, LOSS, WIN, WIN_COL
from training.baselines import (
    BASELINE_FEATURES,
    majority_proba,
    prior_proba,
    ranking_scores,
    top_decile_precision,
)
from training.bootstrap import block_bootstrap_ci, difference_ci
from training.options import annualised_vol_from_feature, option_trade_returns
from training.report import evaluate, log_loss3
from training.trades import CALL, PUT, choose_thresholds, decide, signal_stats

OPTION_EXPIRY_DAYS = 30
RISK_FREE_RATE = 0.04
N_BOOT = 1000


@dataclass
class Evaluation:
    pooled: dict[str, dict[str, float]]  # model -> metric -> value, over every test window
    by_window: dict[str, dict[str, dict[str, float]]]  # "1".."K", "pooled" -> model -> metrics
    intervals: dict[str, tuple[float, float, float]]  # "stack call_precision" -> (pt, lo, hi)
    trades: pl.DataFrame
    report: Path
    metrics: list[tuple[str, str, str, float]]  # (window, model, metric, value) for the store


def trade_metrics(signals: np.ndarray, y: np.ndarray, exit_return: np.ndarray) -> dict:
    """call/put precision, coverage and mean exit return (the stock's own return, so a put
    wins when it is negative): the names `model_metrics` stores."""
    out = {}
    for side, name in ((CALL, "call"), (PUT, "put")):
        taken = signals == side
        out[f"{name}_coverage"] = float(np.mean(taken))
        out[f"{name}_precision"] = float(np.mean(y[taken] == side)) if taken.any() else np.nan
        out[f"{name}_mean_exit_return"] = (
            float(np.mean(exit_return[taken])) if taken.any() else np.nan
        )
    return out


def ranked_signals(score_call: np.ndarray, score_put: np.ndarray, n_call: int, n_put: int):
    """Calls on the `n_call` highest `score_call`, then puts on the `n_put` highest
    `score_put` among the rows not called (one score may rank both sides, as volatility
    does: then the puts are the next most volatile rows)."""
    signals = np.zeros(len(score_call), dtype=np.int8)
    signals[np.argsort(-ranking_scores(score_call), kind="stable")[:n_call]] = CALL
    put_score = np.where(signals == CALL, -np.inf, ranking_scores(score_put))
    signals[np.argsort(-put_score, kind="stable")[:n_put]] = PUT
    return signals


def window_scores(samples, window, oof, meta_rows_, models, y_train) -> dict[str, dict]:
    """Every model's and baseline's metrics on one window's rows, plus the decisions each
    made (`signals`) and its ranking score (`score`), for pooling."""
    rows = window.rows
    y, exit_return = samples.y[rows], samples.exit_return[rows]
    n = len(rows)
    out: dict[str, dict] = {}

    def add(name, proba, signals, score):
        metrics = evaluate(y, proba, y_train) if proba is not None else {}
        metrics["top10_win_precision"] = (
            top_decile_precision(score, y == WIN) if score is not None else np.nan
        )
        metrics.update(trade_metrics(signals, y, exit_return))
        out[name] = {"metrics": metrics, "proba": proba, "signals": signals, "score": score}

    for name in [*models, "stack"]:
        proba = window.proba[name]
        signals = window.signals if name == "stack" else np.zeros(n, dtype=np.int8)
        add(name, proba, signals, proba[:, WIN_COL])
    n_call, n_put = int(np.sum(window.signals == CALL)), int(np.sum(window.signals == PUT))
    add("baseline_majority", majority_proba(y_train, n), np.zeros(n, np.int8), None)
    add("baseline_prior", prior_proba(y_train, n), np.zeros(n, np.int8), None)
    add("baseline_every_day", None, np.full(n, CALL, np.int8), None)
    vol = samples.column(BASELINE_FEATURES["baseline_volatility"])[rows]
    add("baseline_volatility", None, ranked_signals(vol, vol, n_call, n_put), vol)
    mom = samples.column(BASELINE_FEATURES["baseline_momentum"])[rows]
    add("baseline_momentum", None, ranked_signals(mom, -mom, n_call, n_put), mom)
    losses = {
        m: log_loss3(samples.y[meta_rows_], oof[meta_rows_, 3 * j : 3 * j + 3])
        for j, m in enumerate(models)
    }
    best = min(losses, key=losses.get)
    j = models.index(best)
    train_proba = oof[meta_rows_, 3 * j : 3 * j + 3]
    call, put = choose_thresholds(train_proba, samples.y[meta_rows_])
    proba = window.proba[best]
    add(
        "baseline_best_base", proba, decide(proba, call.threshold, put.threshold), proba[:, WIN_COL]
    )
    out["baseline_best_base"]["metrics"]["model_index"] = float(j)
    return out


def pool(per_window: list[dict[str, dict]], samples, rows, y_train) -> dict[str, dict]:
    """Pooled metrics: every window's rows, probabilities and decisions concatenated."""
    y, exit_return = samples.y[rows], samples.exit_return[rows]
    out = {}
    for name in per_window[0]:
        parts = [w[name] for w in per_window]
        signals = np.concatenate([p["signals"] for p in parts])
        has_score = parts[0]["score"] is not None
        score = np.concatenate([p["score"] for p in parts]) if has_score else None
        has_proba = parts[0]["proba"] is not None
        proba = np.vstack([p["proba"] for p in parts]) if has_proba else None
        metrics = evaluate(y, proba, y_train) if has_proba else {}
        metrics["top10_win_precision"] = (
            top_decile_precision(score, y == WIN) if has_score else np.nan
        )
        metrics.update(trade_metrics(signals, y, exit_return))
        if name == "baseline_best_base":
            metrics["model_index"] = np.nan
        out[name] = {"metrics": metrics, "proba": proba, "signals": signals, "score": score}
    return out


def exit_volatility(con: Any, samples, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the trading date it exits on (`exit_offset` trading days later in its
    own stock's history) and its `vol_20` on that date (NaT/NaN where not stored).

    DuckDB walks the histories (the `features` table can be the whole market: it spills
    under the memory limit instead of coming into Python); only one row per signal comes
    back."""
    from stockml import store

    entry = pl.DataFrame(
        {
            "symbol": samples.symbols[rows],
            "date": samples.dates[rows],
            "offset": np.asarray(samples.exit_offset[rows], dtype=np.int64),
            "i": np.arange(len(rows)),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    with store.registered(con, "_signals", entry):
        found = store.query_pl(
            con,
            "WITH hist AS (SELECT symbol, date, vol_20, row_number() OVER "
            "(PARTITION BY symbol ORDER BY date) AS pos FROM features "
            "WHERE symbol IN (SELECT DISTINCT symbol FROM _signals)), "
            "ex AS (SELECT s.i, s.symbol, h.pos + s.offset AS pos FROM _signals s "
            "LEFT JOIN hist h USING (symbol, date)) "
            "SELECT ex.i, x.date AS exit_date, x.vol_20 FROM ex "
            "LEFT JOIN hist x ON x.symbol = ex.symbol AND x.pos = ex.pos ORDER BY ex.i",
        )
    return found["exit_date"].to_numpy(), found["vol_20"].to_numpy().astype(float)


def trades_table(con: Any, samples, windows, run_id: str) -> pl.DataFrame:
    """One row per stack signal in the test windows: the stock trade from the labels and an
    at-the-money option (Black-Scholes at realized volatility, see training/options.py)."""
    rows = np.concatenate([w.rows[w.signals != 0] for w in windows])
    signals = np.concatenate([w.signals[w.signals != 0] for w in windows])
    number = np.concatenate([np.full(int(np.sum(w.signals != 0)), w.number) for w in windows])
    exit_date, exit_vol = exit_volatility(con, samples, rows)
    exit_return = samples.exit_return[rows]
    option = option_trade_returns(
        1.0,
        1.0 + exit_return,
        annualised_vol_from_feature(samples.column("vol_20")[rows]),
        annualised_vol_from_feature(exit_vol),
        samples.exit_offset[rows],
        signals.astype(int),
        OPTION_EXPIRY_DAYS,
        RISK_FREE_RATE,
    )
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(rows),
            "window": [str(n) for n in number],
            "symbol": samples.symbols[rows],
            "date": samples.dates[rows],
            "signal": ["BUY CALL" if s == CALL else "BUY PUT" for s in signals],
            "exit_date": exit_date,
            "days_held": samples.exit_offset[rows].astype(np.int32),
            "outcome": samples.y[rows].astype(np.int32),
            "stock_return": exit_return,
            "option_return": option,
        }
    ).with_columns(pl.col("date").cast(pl.Date), pl.col("exit_date").cast(pl.Date))


LIFTS = {  # baseline -> metrics on which the stack's lift over it is bootstrapped
    "baseline_majority": ("accuracy",),
    "baseline_prior": ("log_loss",),
    "baseline_every_day": ("call_precision",),
    "baseline_volatility": ("top10_win_precision", "call_precision", "put_precision"),
    "baseline_momentum": ("top10_win_precision", "call_precision", "put_precision"),
    "baseline_best_base": ("log_loss", "call_precision", "put_precision"),
}


def _statistic(metric: str):
    """metric(y, proba, signals, score) on resampled rows; lower-is-better metrics negated
    by the caller where a lift is wanted."""

    def stat(y, proba, signals, score):
        if metric == "accuracy":
            return float(np.mean(CLASSES[proba.argmax(axis=1)] == y))
        if metric == "log_loss":
            return log_loss3(y, proba)
        if metric == "top10_win_precision":
            return top_decile_precision(score, y == WIN)
        side = CALL if metric.startswith("call") else PUT
        taken = signals == side
        return float(np.mean(y[taken] == side)) if taken.any() else np.nan

    return stat


def intervals(pooled: dict, samples, rows: np.ndarray, block_days: int) -> dict:
    """95 % intervals for the stack's pooled metrics and its lift over each baseline, by a
    block bootstrap over test dates (every stock-day of a date moves together)."""
    y, dates = samples.y[rows], samples.dates[rows]
    stack = pooled["stack"]
    out = {}
    for metric in (
        "accuracy",
        "log_loss",
        "top10_win_precision",
        "call_precision",
        "put_precision",
    ):
        ci = block_bootstrap_ci(
            _statistic(metric),
            dates,
            y,
            stack["proba"],
            stack["signals"],
            stack["score"],
            n_boot=N_BOOT,
            block_days=block_days,
        )
        out[f"stack {metric}"] = tuple(ci)
    for baseline, metrics in LIFTS.items():
        other = pooled[baseline]
        for metric in metrics:
            stat = _statistic(metric)
            sign = -1.0 if metric == "log_loss" else 1.0  # a lift: lower log loss is better

            def a(y, p1, s1, c1, p2, s2, c2, stat=stat, sign=sign):
                return sign * stat(y, p1, s1, c1)

            def b(y, p1, s1, c1, p2, s2, c2, stat=stat, sign=sign):
                return sign * stat(y, p2, s2, c2)

            p2 = other["proba"] if other["proba"] is not None else stack["proba"]
            c2 = other["score"] if other["score"] is not None else stack["score"]
            ci = difference_ci(
                a,
                b,
                dates,
                y,
                stack["proba"],
                stack["signals"],
                stack["score"],
                p2,
                other["signals"],
                c2,
                n_boot=N_BOOT,
                block_days=block_days,
            )
            out[f"lift over {baseline} {metric}"] = tuple(ci)
    return out


def evaluate_run(
    con,
    samples,
    lay,
    windows,
    live,
    oof,
    profile,
    run_id,
    run_dir,
    models,
    recipe: str = "",
    tuning: dict | None = None,
):
    """Score every window and the pooled test rows, bootstrap the intervals, price every
    signal as a trade, give the live model its track record, write report.md and plots.
    `recipe` and `tuning` (training.pipeline) are stated in the report and stored."""
    from training.plots import write_plots
    from training.report import ReportData, random_split_audit, write_report

    day_index = np.searchsorted(lay.days, samples.dates)
    per_window = []
    for block, window in zip(lay.windows, windows, strict=True):
        y_train = samples.y[day_index < lay.fit_end(block)]
        rows = np.flatnonzero((day_index >= lay.bounds[1]) & (day_index < lay.fit_end(block)))
        per_window.append(window_scores(samples, window, oof, rows, models, y_train))
    rows = np.concatenate([w.rows for w in windows])
    y_train = samples.y[day_index < lay.fit_end(lay.first_window)]
    pooled = pool(per_window, samples, rows, y_train)
    by_window = {
        str(w.number): {name: s["metrics"] for name, s in scores.items()}
        for w, scores in zip(windows, per_window, strict=True)
    }
    by_window["pooled"] = {name: s["metrics"] for name, s in pooled.items()}
    block_days = max(lay.horizon, round(np.sqrt(len(np.unique(samples.dates[rows])))))
    cis = intervals(pooled, samples, rows, block_days)
    trades = trades_table(con, samples, windows, run_id)
    option = np.full(len(rows), np.nan)
    signalled = pooled["stack"]["signals"] != 0
    option[signalled] = trades["option_return"].to_numpy()
    record = signal_stats(
        pooled["stack"]["signals"],
        samples.y[rows],
        samples.exit_return[rows],
        samples.exit_offset[rows],
        option,
    )
    record["base_rate_win"] = float(np.mean(samples.y[rows] == WIN))
    record["base_rate_loss"] = float(np.mean(samples.y[rows] == LOSS))
    live.track_record = record
    audit_model = "lightgbm" if "lightgbm" in models else models[0]
    audit = random_split_audit(samples, audit_model, 7)
    plots = write_plots(run_dir, by_window, pooled, samples, rows, trades, audit, lay.horizon)
    data = ReportData(
        run_id,
        profile,
        lay,
        windows,
        by_window,
        cis,
        record,
        audit,
        audit_model,
        models,
        recipe,
        tuning or {},
    )
    report = write_report(run_dir, data, plots)
    metrics = [
        (window, model, metric, float(value))
        for window, table in by_window.items()
        for model, values in table.items()
        for metric, value in values.items()
    ]
    for key, (point, low, high) in cis.items():
        model, metric = (
            ("stack", key.split()[1])
            if key.startswith("stack ")
            else (key.split()[2], f"lift_{key.split()[3]}")
        )
        if not key.startswith("stack "):
            metrics.append(("pooled", model, metric, point))
        metrics += [
            ("pooled", model, f"{metric}_ci_low", low),
            ("pooled", model, f"{metric}_ci_high", high),
        ]
    for w in windows:
        d = w.decision
        metrics += [
            (str(w.number), "stack", "t_call", d.t_call),
            (str(w.number), "stack", "t_put", d.t_put),
            (str(w.number), "stack", "calibrated", float(d.calibration.calibrator is not None)),
        ]
    metrics += [("pooled", "audit_random_split", k, v) for k, v in audit.items()]
    for model, t in (tuning or {}).items():
        metrics.append(("pooled", model, "tuning_chosen", float(t["chosen"])))
        metrics += [
            ("pooled", model, f"tuning_log_loss_{i}", float(v)) for i, v in t["scores"].items()
        ]
    for w in windows:
        if w.kept:
            metrics += [(str(w.number), m, "in_stack", float(m in w.kept)) for m in models]
        metrics += [(str(w.number), m, "stack_weight", v) for m, v in w.weights.items()]
    return Evaluation(by_window["pooled"], by_window, cis, trades, report, metrics)
