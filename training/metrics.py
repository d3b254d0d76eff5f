"""Every score of a run, in one module that imports no model: log loss, classification
scores, Brier scores, top-decile precision and the trade figures `model_metrics` stores.

Probability matrices are (n, 3) with the columns of `stockml.defaults.CLASSES` (loss,
timeout, win); labels are (n,) in {-1, 0, +1}; signals are the int8 codes of
`training.trades` (+1 BUY CALL, -1 BUY PUT, 0 HOLD). Pure NumPy (and sklearn's metric
functions); no I/O.
"""

from __future__ import annotations

import numpy as np

from stockml.defaults import CLASS_NAMES as NAMES
from stockml.defaults import CLASSES, WIN_COL
from training.trades import CALL, PUT


def class_columns(y: np.ndarray) -> np.ndarray:
    """(n,) the column of each label in CLASSES order (-1, 0, +1 -> 0, 1, 2): the label
    plus one. Raises ValueError for a label outside CLASSES."""
    y = np.asarray(y)
    if len(y) and (y.min() < CLASSES[0] or y.max() > CLASSES[-1]):
        raise ValueError(f"labels must lie in {CLASSES.tolist()}")
    return y.astype(np.intp) - CLASSES[0]


def true_class_log_loss(picked: np.ndarray) -> float:
    """Mean negative log of (n,) true-class probabilities, clipped at 1e-12."""
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def log_loss3(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class, (n, 3) in CLASSES order, clipped at
    1e-12 (sklearn's log_loss for three fixed labels, without its input checks: fast
    enough to call in every bootstrap resample)."""
    return true_class_log_loss(proba[np.arange(len(y)), class_columns(y)])


def brier(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Brier score per class, (3,): mean squared error of p_c against 1{y = c} (Brier
    1950; summed over the classes it is the multi-class Brier score)."""
    onehot = (y[:, None] == CLASSES[None, :]).astype(float)
    return ((proba - onehot) ** 2).mean(axis=0)


def top_decile_precision(scores: np.ndarray, hit: np.ndarray) -> float:
    """Share of `hit` among the max(1, n // 10) highest scores: the precision of the 10%
    most confident calls, the report's `top10_win_precision` definition.

    scores: shape (n,) (use `training.baselines.ranking_scores` for features, p_win for a
    model); hit: shape (n,) bool (e.g. y == 1). Rows are taken as
    `np.argsort(-scores, kind="stable")` (found in O(n) by a partition), so ties at the cut
    go to the earlier row; the plain np.argsort (quicksort) of `evaluate` leaves that order
    unspecified, which only matters for tied scores. Returns NaN for n = 0. Raises
    ValueError on mismatched lengths.
    """
    scores = np.asarray(scores, dtype=float)
    hit = np.asarray(hit, dtype=bool)
    if scores.shape != hit.shape:
        raise ValueError("scores and hit must have one value per row")
    if len(scores) == 0:
        return float("nan")
    k = max(1, len(scores) // 10)
    negated = -scores
    if np.isnan(negated).any():  # NaN sorts last: the stable sort says where it lands
        return float(np.mean(hit[np.argsort(negated, kind="stable")[:k]]))
    # The same rows in O(n), for the bootstrap's thousand resamples: every score above the
    # k-th largest, then the earliest rows tied with it.
    cut = np.partition(negated, k - 1)[k - 1]
    above = negated < cut
    tied = np.flatnonzero(negated == cut)[: k - int(above.sum())]
    return float((hit[above].sum() + hit[tied].sum()) / k)


def confusion(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(3, 3) int counts, [i, j] = rows of class CLASSES[i] predicted as CLASSES[j]."""
    cells = 3 * class_columns(y) + class_columns(predicted)
    return np.bincount(cells, minlength=9).reshape(3, 3)


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise, `empty` where den is 0."""
    out = np.full(len(num), empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def evaluate(y: np.ndarray, proba: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, log loss, per-class precision/recall, the
    majority-class baseline (from the training period's labels `y_train`), the precision
    of the 10% most confident win calls, Brier scores and the confusion counts.

    The classification scores are sklearn's definitions computed from one confusion
    matrix (the same numbers as `accuracy_score`, `balanced_accuracy_score` (a class
    absent from y left out), `f1_score(average="macro", labels=CLASSES,
    zero_division=0)` and `precision_recall_fscore_support(labels=CLASSES,
    zero_division=0)`; tests/test_training_models.py checks them against sklearn), a
    fraction of its validation cost, which ran 250 times a run."""
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 models sum to 1 +- 1e-7
    predicted = CLASSES[proba.argmax(axis=1)]
    counts = confusion(y, predicted)
    tp, true, called = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    recall = _ratio(tp, true, np.nan)
    precision = _ratio(tp, called, 0.0)
    out = {
        "accuracy": tp.sum() / len(y),
        "balanced_accuracy": float(np.mean(recall[~np.isnan(recall)])),
        "macro_f1": float(np.mean(_ratio(2 * tp, true + called, 0.0))),
        "log_loss": log_loss3(y, proba),
    }
    for c, p, r in zip(CLASSES, precision, np.nan_to_num(recall, nan=0.0), strict=True):
        out[f"precision_{NAMES[c]}"] = float(p)
        out[f"recall_{NAMES[c]}"] = float(r)
    majority = CLASSES[np.argmax([np.mean(y_train == c) for c in CLASSES])]
    out["majority_baseline"] = float(np.mean(y == majority))
    top = np.argsort(-proba[:, WIN_COL])[: max(1, len(y) // 10)]
    out["top10_win_precision"] = float(np.mean(y[top] == 1))
    out["base_rate_win"] = float(np.mean(y == 1))
    for c, score in zip(CLASSES, brier(proba, y), strict=True):
        out[f"brier_{NAMES[c]}"] = float(score)
    for i, actual in enumerate(CLASSES):
        for j, guess in enumerate(CLASSES):
            out[f"confusion_{NAMES[actual]}_as_{NAMES[guess]}"] = float(counts[i, j])
    return {k: float(v) for k, v in out.items()}


def trade_metrics(signals: np.ndarray, y: np.ndarray, exit_return: np.ndarray) -> dict:
    """call/put precision, coverage and mean exit return (the stock's own return, so a put
    wins when it is negative): the names `model_metrics` stores. All inputs (n,)."""
    out = {}
    for side, name in ((CALL, "call"), (PUT, "put")):
        taken = signals == side
        out[f"{name}_coverage"] = float(np.mean(taken))
        out[f"{name}_precision"] = float(np.mean(y[taken] == side)) if taken.any() else np.nan
        out[f"{name}_mean_exit_return"] = (
            float(np.mean(exit_return[taken])) if taken.any() else np.nan
        )
    return out


def newey_west_t(values: np.ndarray, lags: int) -> float:
    """The t-statistic of the mean of the series `values` (n,), with the Newey-West (1987)
    long-run variance: autocovariances up to `lags` with Bartlett weights
    1 - j / (lags + 1). Daily scores of overlapping H-day labels are autocorrelated for
    H - 1 days: use lags = H - 1. NaN for fewer than 2 values or a zero variance."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return float("nan")
    e = x - x.mean()
    variance = e @ e / n
    for j in range(1, min(lags, n - 1) + 1):
        variance += 2.0 * (1.0 - j / (lags + 1)) * (e[j:] @ e[:-j]) / n
    return float(x.mean() / np.sqrt(variance / n)) if variance > 0 else float("nan")


def daily_ranking(
    dates: np.ndarray,
    score: np.ndarray,
    realized: np.ndarray,
    win: np.ndarray,
    min_names: int = 5,
    pick: np.ndarray | None = None,
):
    """Per test day, how a ranking of that day's stocks by `score` did: the Spearman rank
    correlation of score and `realized` (the exit return), the mean realized return of the
    top decile by score minus the bottom decile's (max(1, n // 10) rows each), and the
    share of `win` in the top decile by `pick` (default: `score`; a model's P(win), whose
    top decile is what a call buyer would pick, while its IC is read from p_win - p_loss).
    All inputs (n,), rows of many days; rows with a non-finite score, pick or return are
    left out, and days with fewer than `min_names` rows.
    Returns a polars DataFrame (date, ic, spread, top_win, names), in date order; ic is
    null on a day whose scores or returns are all equal. Ties: average ranks for the
    correlation (polars' Spearman, as scipy's), row order at the decile cut."""
    import polars as pl

    frame = pl.DataFrame(
        {
            "date": dates,
            "s": np.asarray(score, dtype=float),
            "r": np.asarray(realized, dtype=float),
            "w": np.asarray(win, dtype=bool),
            "p": np.asarray(score if pick is None else pick, dtype=float),
        }
    ).filter(pl.col("s").is_finite() & pl.col("r").is_finite() & pl.col("p").is_finite())
    rank = pl.col("s").rank("ordinal").over("date")
    n = pl.len().over("date")
    k = pl.max_horizontal(pl.lit(1), n // 10)
    picked = pl.col("p").rank("ordinal").over("date") > n - k
    frame = frame.with_columns(top=rank > n - k, bottom=rank <= k, picked=picked)
    daily = (
        frame.group_by("date")
        .agg(
            ic=pl.corr("s", "r", method="spearman"),
            spread=pl.col("r").filter(pl.col("top")).mean()
            - pl.col("r").filter(pl.col("bottom")).mean(),
            top_win=pl.col("w").filter(pl.col("picked")).mean(),
            names=pl.len(),
        )
        .filter(pl.col("names") >= min_names)
        .with_columns(pl.col("ic").fill_nan(None))
        .sort("date")
    )
    return daily


def ranking_metrics(
    dates: np.ndarray,
    score: np.ndarray,
    realized: np.ndarray,
    win: np.ndarray,
    horizon: int,
    pick: np.ndarray | None = None,
) -> dict[str, float]:
    """The field's ranking skill of `score` over test rows (see `daily_ranking`; `pick`
    the score whose daily top decile the win share is read from, default `score`), averaged
    over days with t-statistics from Newey-West errors with horizon - 1 lags (the labels of
    neighbouring days overlap): `rank_ic`, `rank_ic_t`, `top_minus_bottom` (mean daily
    top-decile minus bottom-decile exit return), `top_minus_bottom_t`,
    `top10_win_precision_daily` (mean daily share of wins in the top decile) and
    `ranking_days`. NaN where no day qualifies."""
    daily = daily_ranking(dates, score, realized, win, pick=pick)
    lags = max(0, horizon - 1)
    ic = daily["ic"].drop_nulls().to_numpy()
    spread = daily["spread"].drop_nulls().to_numpy()
    top = daily["top_win"].drop_nulls().to_numpy()
    return {
        "rank_ic": float(ic.mean()) if len(ic) else np.nan,
        "rank_ic_t": newey_west_t(ic, lags),
        "top_minus_bottom": float(spread.mean()) if len(spread) else np.nan,
        "top_minus_bottom_t": newey_west_t(spread, lags),
        "top10_win_precision_daily": float(top.mean()) if len(top) else np.nan,
        "ranking_days": float(len(ic)),
    }


def paired_daily_lift(
    dates: np.ndarray,
    score: np.ndarray,
    other: np.ndarray,
    realized: np.ndarray,
    win: np.ndarray,
    horizon: int,
    pick: np.ndarray | None = None,
    other_pick: np.ndarray | None = None,
) -> dict[str, float]:
    """How much better the ranking by `score` did than the ranking by `other` on the same
    rows and days (`daily_ranking` of each, the win share read from the top decile of
    `pick` / `other_pick`; days both rank): the mean daily difference of the rank IC and of
    the top-decile win share, each with its Newey-West t (horizon - 1 lags): `lift_rank_ic`,
    `lift_rank_ic_t`, `lift_top10_win_precision_daily`, `lift_top10_win_precision_daily_t`."""
    a = daily_ranking(dates, score, realized, win, pick=pick)
    b = daily_ranking(dates, other, realized, win, pick=other_pick)
    both = a.join(b, on="date", suffix="_other").drop_nulls(["ic", "ic_other"])
    lags = max(0, horizon - 1)
    out = {}
    for key, column in (("rank_ic", "ic"), ("top10_win_precision_daily", "top_win")):
        diff = (both[column] - both[f"{column}_other"]).drop_nulls().to_numpy()
        out[f"lift_{key}"] = float(diff.mean()) if len(diff) else np.nan
        out[f"lift_{key}_t"] = newey_west_t(diff, lags)
    return out
