"""From class probabilities to trades, and what those trades did.

Signals are int8 codes: +1 BUY CALL, -1 BUY PUT, 0 HOLD. Probability matrices have the
columns of `stockml.defaults.CLASSES` (loss, timeout, win). A call is right when the
label is a win (+1), a put when it is a loss (-1): the signal code equals the label it
bets on. Pure NumPy; no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stockml.defaults import LOSS_COL, WIN_COL

CALL, PUT, HOLD = 1, -1, 0
# A signal type must fire on this share of the training stock-days at least, and at most.
MIN_COVERAGE, MAX_COVERAGE = 0.02, 0.20
SIDES = {"call": CALL, "put": PUT}


def decide(proba: np.ndarray, t_call: float, t_put: float) -> np.ndarray:
    """Signals for each row of `proba` (shape (n, 3), CLASSES order) -> int8 shape (n,).

    BUY CALL where p_win >= t_call, BUY PUT where p_loss >= t_put. Where both fire, the one
    whose probability clears its threshold by more wins; an exact tie of the two margins is
    HOLD, since the model then argues equally for opposite trades. NaN probabilities and
    NaN thresholds never fire (pass np.inf to switch a side off). Raises ValueError when
    proba is not (n, 3).
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != 3:
        raise ValueError(f"proba must have shape (n, 3), got {proba.shape}")
    call_margin = proba[:, WIN_COL] - t_call
    put_margin = proba[:, LOSS_COL] - t_put
    call = (call_margin >= 0) & ~(put_margin >= call_margin)
    put = (put_margin >= 0) & ~(call_margin >= put_margin)
    return (call.astype(np.int8) - put.astype(np.int8)).astype(np.int8)


class ThresholdChoice(NamedTuple):
    """The chosen threshold, the precision and coverage it reached, and why it was chosen."""

    threshold: float
    precision: float
    coverage: float
    reason: str


def choose_threshold(
    p: np.ndarray,
    hit: np.ndarray,
    min_coverage: float = 0.02,
    grid: np.ndarray | None = None,
) -> ThresholdChoice:
    """The threshold t maximising the precision of `hit` among rows with p >= t, subject to
    coverage (share of all rows with p >= t) >= min_coverage.

    p: shape (n,) scores (e.g. p_win); hit: shape (n,) bool (e.g. y == 1). Candidates are
    the distinct finite values of p (or the values of `grid`): a threshold takes every row
    tied at its value or none, so ties cannot split. Among equally precise candidates the
    lowest threshold (the most trades) is kept. NaN scores never signal but count in the
    coverage denominator. With no candidate meeting min_coverage the result is threshold
    inf (never signal), precision NaN, coverage 0 and a reason saying so.
    Choose thresholds on out-of-fold predictions of the training period: chosen on test
    rows, the precision it reports is optimistic by construction.
    Raises ValueError for mismatched lengths or min_coverage outside [0, 1].
    """
    p = np.asarray(p, dtype=float)
    hit = np.asarray(hit, dtype=bool)
    if p.shape != hit.shape or p.ndim != 1:
        raise ValueError("p and hit must be 1-D arrays of one length")
    if not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage must lie in [0, 1], got {min_coverage}")
    n = len(p)
    finite = np.isfinite(p)
    order = np.argsort(-p[finite], kind="stable")
    descending = p[finite][order]
    hits_above = np.r_[0, np.cumsum(hit[finite][order])]  # hits among the top k rows
    if grid is None:
        # The last position of each run of equal values: all rows >= that value.
        run_ends = np.r_[descending[1:] != descending[:-1], True][: len(descending)]
        last = np.flatnonzero(run_ends)
        candidates = descending[last]
        signalled = last + 1
    else:
        candidates = np.unique(np.asarray(grid, dtype=float))
        signalled = np.searchsorted(-descending, -candidates, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hits_above[signalled] / signalled
    coverage = signalled / n if n else np.zeros(len(candidates))
    allowed = (coverage >= min_coverage) & (signalled > 0)
    if not allowed.any():
        return ThresholdChoice(
            np.inf,
            np.nan,
            0.0,
            f"no threshold signals >= {min_coverage:.1%} of {n} rows: never signal",
        )
    best = np.flatnonzero(allowed & (precision == np.nanmax(precision[allowed])))
    pick = best[np.argmin(candidates[best])]
    reason = (
        f"t={candidates[pick]:.4f} gives the highest precision {precision[pick]:.3f} on "
        f"{signalled[pick]} of {n} rows (coverage {coverage[pick]:.1%} >= "
        f"{min_coverage:.1%}) among {allowed.sum()} allowed of {len(candidates)} thresholds"
    )
    return ThresholdChoice(
        float(candidates[pick]), float(precision[pick]), float(coverage[pick]), reason
    )


def coverage_grid(p: np.ndarray, min_coverage: float, max_coverage: float) -> np.ndarray:
    """Thresholds at which `p >= t` signals min_coverage, min_coverage + 1 %, ...,
    max_coverage of the rows (quantiles of p)."""
    shares = np.arange(round(min_coverage * 100), round(max_coverage * 100) + 1) / 100
    return np.quantile(p[np.isfinite(p)], 1 - shares, method="higher")


def choose_thresholds(
    proba: np.ndarray,
    y: np.ndarray,
    min_coverage: float = MIN_COVERAGE,
    max_coverage: float = MAX_COVERAGE,
) -> tuple[ThresholdChoice, ThresholdChoice]:
    """The call threshold on p_win and the put threshold on p_loss, each the most precise
    of the grid that signals min_coverage .. max_coverage of the rows, in steps of one
    percentage point. proba: (n, 3) out-of-sample probabilities of the training period; y:
    (n,) its labels. A grid, not every distinct probability: the best precision over
    ~30 k candidates is mostly noise (on the demo it picked a put rule firing on 59 % of
    days), and a rule firing on more than a fifth of all stock-days is no longer a
    selective signal."""
    out = []
    for col, side in ((WIN_COL, CALL), (LOSS_COL, PUT)):
        p = np.asarray(proba, dtype=float)[:, col]
        grid = coverage_grid(p, min_coverage, max_coverage)
        out.append(choose_threshold(p, np.asarray(y) == side, min_coverage, grid))
    return out[0], out[1]


def signal_stats(
    signals: np.ndarray,
    y: np.ndarray,
    exit_return: np.ndarray,
    exit_offset: np.ndarray,
    option_return: np.ndarray | None = None,
) -> dict[str, float]:
    """Per signal type, what its trades did. All inputs shape (n,), one row per test row.

    signals: codes from `decide`; y: labels (-1, 0, +1); exit_return: the stock's return
    from entry close to barrier exit (label table, a fraction); exit_offset: trading days
    held; option_return: the option trade's return on that row (`option_trade_returns`
    with the row's side), optional.
    Keys are "<side>_<metric>", side in call/put:
      trades, coverage (trades / n), precision (share labelled as bet: win for a call,
      loss for a put), hit_rate (share whose stock return from the trader's side is > 0,
      which also counts timeouts that ended in profit), mean/median/worst_stock_return
      (from the trader's side: a put gains -exit_return), mean_days_held, and with
      option_return: option_trades (rows with a finite option return; NaN ones, e.g. a
      volatility in warm-up, are left out), mean/median/worst_option_return.
    A side with no trades has trades 0 and NaN statistics. Raises ValueError on
    mismatched lengths.
    """
    arrays = [np.asarray(a) for a in (signals, y, exit_return, exit_offset)]
    if option_return is not None:
        arrays.append(np.asarray(option_return, dtype=float))
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("every input must have one value per row")
    signals, y, exit_return, exit_offset = arrays[:4]
    n = len(signals)
    out: dict[str, float] = {}
    for name, side in SIDES.items():
        taken = signals == side
        trades = int(taken.sum())
        stock = side * exit_return[taken].astype(float)
        stats = {
            "trades": trades,
            "coverage": trades / n if n else np.nan,
            "precision": np.mean(y[taken] == side) if trades else np.nan,
            "hit_rate": np.mean(stock > 0) if trades else np.nan,
            **_summary("stock_return", stock),
            "mean_days_held": np.mean(exit_offset[taken]) if trades else np.nan,
        }
        if option_return is not None:
            option = arrays[4][taken]
            option = option[np.isfinite(option)]
            stats["option_trades"] = len(option)
            stats.update(_summary("option_return", option))
        out.update({f"{name}_{key}": float(value) for key, value in stats.items()})
    return out


def _summary(what: str, values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {f"mean_{what}": np.nan, f"median_{what}": np.nan, f"worst_{what}": np.nan}
    return {
        f"mean_{what}": np.mean(values),
        f"median_{what}": np.median(values),
        f"worst_{what}": np.min(values),
    }


class EquityCurve(NamedTuple):
    """One point per trading date with trades, in date order."""

    dates: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    max_drawdown: float


def equity_curve(dates: np.ndarray, returns: np.ndarray, fraction: float = 1.0) -> EquityCurve:
    """Equity of a trader who, each entry date, stakes `fraction` of equity on an
    equal-weight basket of that day's trades and books the basket's result at once.

    dates: shape (n,) entry dates of the trades (any sortable dtype); returns: shape (n,)
    trade returns as fractions from the trader's side (stock or option). Day d's return is
    fraction * mean(returns of trades opened on d) and equity = prod(1 + day returns),
    starting from 1. A simple approximation: trades held H days overlap, and a real book
    would split capital across them and realise each at its own exit; here each day's
    basket is settled before the next, which overstates compounding when holds overlap.
    drawdown = equity / running peak - 1 (<= 0, the peak including the starting 1);
    max_drawdown is its minimum (0.0 for an empty curve). Rows with a non-finite return
    are left out. Raises ValueError on mismatched lengths or fraction outside (0, 1].
    """
    dates = np.asarray(dates)
    returns = np.asarray(returns, dtype=float)
    if dates.shape != returns.shape or dates.ndim != 1:
        raise ValueError("dates and returns must be 1-D arrays of one length")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    keep = np.isfinite(returns)
    days, day_of_trade = np.unique(dates[keep], return_inverse=True)
    day_of_trade = day_of_trade.ravel()
    total = np.bincount(day_of_trade, weights=returns[keep], minlength=len(days))
    count = np.bincount(day_of_trade, minlength=len(days))
    with np.errstate(invalid="ignore"):
        day_return = fraction * total / count
    equity = np.cumprod(1.0 + day_return)
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    drawdown = equity / peak - 1.0
    max_drawdown = float(drawdown.min()) if len(drawdown) else 0.0
    return EquityCurve(days, equity, drawdown, max_drawdown)
