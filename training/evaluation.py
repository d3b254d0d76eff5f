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

from dataclasses import dataclass, field

import numpy as np

from stockml.defaults import CLASSES, LOSS, LOSS_COL, WIN, WIN_COL
from training import predictions
from training.baselines import BASELINE_FEATURES, majority_proba, prior_proba, ranking_scores
from training.bootstrap import (
    block_bootstrap_ci,
    date_counts,
    difference_ci,
    ratio_ci,
    ratio_difference_ci,
)
from training.metrics import (
    evaluate,
    log_loss3,
    paired_daily_lift,
    ranking_metrics,
    top_decile_precision,
    trade_metrics,
)
from training.trades import CALL, PUT

N_BOOT = 1000


@dataclass
class Evaluation:
    """pooled: name -> {"metrics", "proba", "signals", "score"} over every test window's
    rows (`rows`, in window order); by_window: each window's name, "pooled" -> name -> metric ->
    value; intervals: "stack <metric>" / "lift over <baseline> <metric>" -> (point, low,
    high)."""

    pooled: dict[str, dict]
    by_window: dict[str, dict[str, dict[str, float]]]
    intervals: dict[str, tuple[float, float, float]]
    rows: np.ndarray
    # baseline -> the stack's paired daily lifts over it (`metrics.paired_daily_lift`)
    ranking_lifts: dict[str, dict[str, float]] = field(default_factory=dict)


def ranked_signals(score_call: np.ndarray, score_put: np.ndarray, n_call: int, n_put: int):
    """Calls on the `n_call` highest `score_call`, then puts on the `n_put` highest
    `score_put` among the rows not called (one score may rank both sides, as volatility
    does: then the puts are the next most volatile rows)."""
    signals = np.zeros(len(score_call), dtype=np.int8)
    signals[np.argsort(-ranking_scores(score_call), kind="stable")[:n_call]] = CALL
    put_score = np.where(signals == CALL, -np.inf, ranking_scores(score_put))
    signals[np.argsort(-put_score, kind="stable")[:n_put]] = PUT
    return signals


def volatility_model(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`baseline_volatility_model`: a multinomial logistic regression on `natr_14` alone
    (x_train (m,), y_train (m,), x (n,); NaN imputed with the training median), fitted on
    a window's training rows and predicting its test rows: (n, 3) in CLASSES order. What
    the stack's skill would be if it were volatility and nothing else."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from training.impute import MedianImputer

    model = make_pipeline(
        MedianImputer(),
        StandardScaler(),
        LogisticRegression(max_iter=200),
    ).fit(np.asarray(x_train, dtype=float).reshape(-1, 1), y_train)
    proba = np.zeros((len(x), 3))
    proba[:, np.searchsorted(CLASSES, model.classes_)] = model.predict_proba(
        np.asarray(x, dtype=float).reshape(-1, 1)
    )
    return proba


def scores_of(samples, rows, y_train, horizon, proba, signals, score, direction) -> dict:
    """One model's or baseline's metrics on test `rows`: classification and log loss from
    `proba` (n, 3) (None: none), trade figures from `signals`, the pooled top-decile win
    precision of `score` (e.g. p_win; None: none) and the daily ranking skill of
    `direction` (p_win - p_loss, or a feature; None: none). Returns the dict pooling and
    the bootstrap read: metrics, proba, signals, score, direction."""
    y, exit_return = samples.y[rows], samples.exit_return[rows]
    metrics = evaluate(y, proba, y_train) if proba is not None else {}
    metrics["top10_win_precision"] = (
        top_decile_precision(score, y == WIN) if score is not None else np.nan
    )
    # The loss side: a model's p_loss; a ranking ranks both sides by its one score; a
    # constant baseline (no score) ranks nothing.
    loss_score = None if score is None else proba[:, LOSS_COL] if proba is not None else score
    metrics["top10_loss_precision"] = (
        top_decile_precision(loss_score, y == LOSS) if loss_score is not None else np.nan
    )
    metrics.update(trade_metrics(signals, y, exit_return))
    if direction is not None:
        metrics.update(
            ranking_metrics(
                samples.dates[rows], direction, exit_return, y == WIN, horizon, pick=score
            )
        )
    return {
        "metrics": metrics,
        "proba": proba,
        "signals": signals,
        "score": score,
        "direction": direction,
    }


def direction_of(proba: np.ndarray) -> np.ndarray:
    """The ranking score of a probability model: p_win - p_loss."""
    return proba[:, WIN_COL] - proba[:, LOSS_COL]


def window_scores(
    samples, window, oof, meta_rows_, train_rows, models, y_train, choose_rule, horizon
) -> dict[str, dict]:
    """Every model's and baseline's metrics on one window's rows (`scores_of`), plus the
    decisions each made (`signals`) and its ranking scores, for pooling. `meta_rows_` are
    the window's out-of-fold training rows (the best base model and its rule are chosen on
    them: `choose_rule(proba, rows)` gives a training.rules.Rule), `train_rows` every
    training row (the volatility model is fitted on them)."""
    rows = window.rows
    n = len(rows)
    out: dict[str, dict] = {}

    def add(name, proba, signals, score, direction):
        out[name] = scores_of(samples, rows, y_train, horizon, proba, signals, score, direction)

    for name in [*models, "stack"]:
        proba = window.proba[name]
        signals = window.signals if name == "stack" else np.zeros(n, dtype=np.int8)
        add(name, proba, signals, proba[:, WIN_COL], direction_of(proba))
    n_call, n_put = int(np.sum(window.signals == CALL)), int(np.sum(window.signals == PUT))
    add("baseline_majority", majority_proba(y_train, n), np.zeros(n, np.int8), None, None)
    add("baseline_prior", prior_proba(y_train, n), np.zeros(n, np.int8), None, None)
    add("baseline_every_day", None, np.full(n, CALL, np.int8), None, None)
    vol = samples.column(BASELINE_FEATURES["baseline_volatility"])
    add(
        "baseline_volatility",
        None,
        ranked_signals(vol[rows], vol[rows], n_call, n_put),
        vol[rows],
        vol[rows],
    )
    mom = samples.column(BASELINE_FEATURES["baseline_momentum"])[rows]
    add("baseline_momentum", None, ranked_signals(mom, -mom, n_call, n_put), mom, mom)
    proba = volatility_model(vol[train_rows], samples.y[train_rows], vol[rows])
    add(
        "baseline_volatility_model",
        proba,
        np.zeros(n, np.int8),
        proba[:, WIN_COL],
        direction_of(proba),
    )
    losses = {
        m: log_loss3(samples.y[meta_rows_], predictions.of_model(oof, j, meta_rows_))
        for j, m in enumerate(models)
    }
    best = min(losses, key=losses.get)
    j = models.index(best)
    rule = choose_rule(predictions.of_model(oof, j, meta_rows_), meta_rows_)
    proba = window.proba[best]
    add(
        "baseline_best_base",
        proba,
        rule.decide(proba),
        proba[:, WIN_COL],
        direction_of(proba),
    )
    out["baseline_best_base"]["metrics"]["model_index"] = float(j)
    return out


def pool(per_window: list[dict[str, dict]], samples, rows, y_train, horizon) -> dict[str, dict]:
    """Pooled metrics: every window's rows, probabilities, decisions and scores
    concatenated."""
    out = {}
    for name in per_window[0]:
        parts = [w[name] for w in per_window]

        def joined(key, parts=parts):
            if parts[0][key] is None:
                return None
            stack = np.vstack if key == "proba" else np.concatenate
            return stack([p[key] for p in parts])

        out[name] = scores_of(
            samples,
            rows,
            y_train,
            horizon,
            joined("proba"),
            joined("signals"),
            joined("score"),
            joined("direction"),
        )
        if name == "baseline_best_base":
            out[name]["metrics"]["model_index"] = np.nan
    return out


LIFTS = {  # baseline -> metrics on which the stack's lift over it is bootstrapped
    "baseline_majority": ("accuracy",),
    "baseline_prior": ("log_loss",),
    "baseline_every_day": ("call_precision",),
    "baseline_volatility": ("top10_win_precision", "call_precision", "put_precision"),
    "baseline_momentum": ("top10_win_precision", "call_precision", "put_precision"),
    "baseline_best_base": ("log_loss", "call_precision", "put_precision"),
}


def _per_row(metric: str, y, proba, signals) -> tuple[np.ndarray, np.ndarray]:
    """A ratio metric as (num, den) per row, its value sum(num) / sum(den): accuracy and log
    loss are means (den 1), a side's precision the share of hits among the rows it took."""
    if metric == "accuracy":
        return (CLASSES[proba.argmax(axis=1)] == y).astype(float), np.ones(len(y))
    if metric == "log_loss":
        picked = proba[np.arange(len(y)), np.searchsorted(CLASSES, y)]
        return -np.log(np.clip(picked, 1e-12, 1.0)), np.ones(len(y))  # as log_loss3
    side = CALL if metric.startswith("call") else PUT
    taken = signals == side
    return (taken & (y == side)).astype(float), taken.astype(float)


def _top10(score, hit):
    return top_decile_precision(score, hit)


def intervals(pooled: dict, samples, rows: np.ndarray, block_days: int) -> dict:
    """95 % intervals for the stack's pooled metrics and its lift over each baseline, by a
    block bootstrap over test dates (every stock-day of a date moves together). Ratio
    metrics go through their per-date sums (training/bootstrap.py `ratio_ci`), the
    top-decile precision through the resampled rows; all share the same resamples."""
    y, dates = samples.y[rows], samples.dates[rows]
    stack = pooled["stack"]
    win = y == WIN
    draws = date_counts(dates, N_BOOT, block_days)
    out = {}
    for metric in (
        "accuracy",
        "log_loss",
        "top10_win_precision",
        "call_precision",
        "put_precision",
    ):
        if metric == "top10_win_precision":
            ci = block_bootstrap_ci(
                _top10, dates, stack["score"], win, n_boot=N_BOOT, block_days=block_days
            )
        else:
            num, den = _per_row(metric, y, stack["proba"], stack["signals"])
            ci = ratio_ci(num, den, dates, draws=draws)
        out[f"stack {metric}"] = tuple(ci)
    for baseline, metrics in LIFTS.items():
        other = pooled[baseline]
        proba = other["proba"] if other["proba"] is not None else stack["proba"]
        score = other["score"] if other["score"] is not None else stack["score"]
        for metric in metrics:
            if metric == "top10_win_precision":
                ci = difference_ci(
                    lambda s1, s2, w: _top10(s1, w),
                    lambda s1, s2, w: _top10(s2, w),
                    dates,
                    stack["score"],
                    score,
                    win,
                    n_boot=N_BOOT,
                    block_days=block_days,
                )
            else:
                a = _per_row(metric, y, stack["proba"], stack["signals"])
                b = _per_row(metric, y, proba, other["signals"])
                if metric == "log_loss":  # a lift: the baseline's loss minus the stack's
                    a, b = b, a
                ci = ratio_difference_ci(*a, *b, dates, draws=draws)
            out[f"lift over {baseline} {metric}"] = tuple(ci)
    return out


def evaluate_windows(samples, lay, windows, oof: np.ndarray, models: list[str], choose_rule):
    """Score every window and the pooled test rows, and bootstrap the intervals. `windows`
    are training.windows.Window in order; `oof` the forward out-of-fold matrix (for the
    best base model's choice and rule on each window's training period, made by
    `choose_rule(proba, rows)`, as the stack's is). Returns an Evaluation."""
    day_index = np.searchsorted(lay.days, samples.dates)
    per_window = []
    for block, window in zip(lay.windows, windows, strict=True):
        y_train = samples.y[day_index < lay.fit_end(block)]
        train = np.flatnonzero(day_index < lay.fit_end(block))
        rows = np.flatnonzero((day_index >= lay.bounds[1]) & (day_index < lay.fit_end(block)))
        per_window.append(
            window_scores(
                samples, window, oof, rows, train, models, y_train, choose_rule, lay.horizon
            )
        )
    rows = np.concatenate([w.rows for w in windows])
    y_train = samples.y[day_index < lay.fit_end(lay.first_window)]
    pooled = pool(per_window, samples, rows, y_train, lay.horizon)
    by_window = {
        w.name: {name: s["metrics"] for name, s in scores.items()}
        for w, scores in zip(windows, per_window, strict=True)
    }
    by_window["pooled"] = {name: s["metrics"] for name, s in pooled.items()}
    block_days = max(lay.horizon, round(np.sqrt(len(np.unique(samples.dates[rows])))))
    cis = intervals(pooled, samples, rows, block_days)
    return Evaluation(
        pooled, by_window, cis, rows, ranking_lifts(pooled, samples, rows, lay.horizon)
    )


# Baselines whose daily ranking the stack's is compared with, day by day.
RANKED = (
    "baseline_volatility",
    "baseline_momentum",
    "baseline_volatility_model",
    "baseline_best_base",
)


def ranking_lifts(pooled: dict, samples, rows: np.ndarray, horizon: int) -> dict:
    """baseline -> the stack's paired daily lifts over it on the pooled test rows: rank IC
    and daily top-decile win share, mean difference and Newey-West t."""
    y, realized, dates = samples.y[rows], samples.exit_return[rows], samples.dates[rows]
    stack = pooled["stack"]
    return {
        name: paired_daily_lift(
            *(dates, stack["direction"], pooled[name]["direction"], realized, y == WIN),
            horizon,
            pick=stack["score"],
            other_pick=pooled[name]["score"],
        )
        for name in RANKED
        if pooled.get(name, {}).get("direction") is not None
    }
