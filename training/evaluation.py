"""The walk-forward evaluation: every window and the pooled test rows, the stack beside the
model-free baselines, and intervals from a block bootstrap over test dates. Scores only:
it reads the windows' probabilities and decisions and writes nothing (the run's record,
report and trades are later steps: training/record.py, report.py, signal_trades.py).

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

import numpy as np

from stockml.defaults import CLASSES, WIN, WIN_COL
from training import predictions
from training.baselines import BASELINE_FEATURES, majority_proba, prior_proba, ranking_scores
from training.bootstrap import block_bootstrap_ci, difference_ci
from training.metrics import evaluate, log_loss3, top_decile_precision, trade_metrics
from training.trades import CALL, PUT, choose_thresholds, decide

N_BOOT = 1000


@dataclass
class Evaluation:
    """pooled: name -> {"metrics", "proba", "signals", "score"} over every test window's
    rows (`rows`, in window order); by_window: "1".."K", "pooled" -> name -> metric ->
    value; intervals: "stack <metric>" / "lift over <baseline> <metric>" -> (point, low,
    high)."""

    pooled: dict[str, dict]
    by_window: dict[str, dict[str, dict[str, float]]]
    intervals: dict[str, tuple[float, float, float]]
    rows: np.ndarray


def ranked_signals(score_call: np.ndarray, score_put: np.ndarray, n_call: int, n_put: int):
    """Calls on the `n_call` highest `score_call`, then puts on the `n_put` highest
    `score_put` among the rows not called (one score may rank both sides, as volatility
    does: then the puts are the next most volatile rows)."""
    signals = np.zeros(len(score_call), dtype=np.int8)
    signals[np.argsort(-ranking_scores(score_call), kind="stable")[:n_call]] = CALL
    put_score = np.where(signals == CALL, -np.inf, ranking_scores(score_put))
    signals[np.argsort(-put_score, kind="stable")[:n_put]] = PUT
    return signals


def window_scores(samples, window, oof, meta_rows_, models, y_train, coverage) -> dict[str, dict]:
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
        m: log_loss3(samples.y[meta_rows_], predictions.of_model(oof, j, meta_rows_))
        for j, m in enumerate(models)
    }
    best = min(losses, key=losses.get)
    j = models.index(best)
    train_proba = predictions.of_model(oof, j, meta_rows_)
    call, put = choose_thresholds(train_proba, samples.y[meta_rows_], *coverage)
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


def evaluate_windows(samples, lay, windows, oof: np.ndarray, models: list[str], coverage):
    """Score every window and the pooled test rows, and bootstrap the intervals. `windows`
    are training.windows.Window in order; `oof` the forward out-of-fold matrix (for the
    best base model's choice and thresholds on each window's training period); `coverage`
    the (min, max) share a baseline's thresholds may signal. Returns an Evaluation."""
    day_index = np.searchsorted(lay.days, samples.dates)
    per_window = []
    for block, window in zip(lay.windows, windows, strict=True):
        y_train = samples.y[day_index < lay.fit_end(block)]
        rows = np.flatnonzero((day_index >= lay.bounds[1]) & (day_index < lay.fit_end(block)))
        per_window.append(window_scores(samples, window, oof, rows, models, y_train, coverage))
    rows = np.concatenate([w.rows for w in windows])
    y_train = samples.y[day_index < lay.fit_end(lay.first_window)]
    pooled = pool(per_window, samples, rows, y_train)
    by_window = {
        str(w.number): {name: s["metrics"] for name, s in scores.items()}
        for w, scores in zip(windows, per_window, strict=True)
    }
    by_window["pooled"] = {name: s["metrics"] for name, s in pooled.items()}
    block_days = max(lay.horizon, round(np.sqrt(len(np.unique(samples.dates[rows])))))
    return Evaluation(pooled, by_window, intervals(pooled, samples, rows, block_days), rows)
