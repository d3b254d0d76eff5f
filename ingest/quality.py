"""One symbol's history checked for prices that contradict themselves; repaired where the
evidence is exact, quarantined where it is not. Pure: bars and actions in, bars and findings
out; nothing about HTTP or the store.

Each day's move is the ratio of its close to the previous bar's close, measured twice: on
`close` (drives open/high/low/close) and on `adjclose` (what features and labels use). A
day is looked at when a split is reported on it or when either move is beyond MOVE_LIMIT:

    unadjusted_split  a split r reported that day, and a series jumps by 1/r within
                      MATCH_TOLERANCE: Yahoo reported the split but did not apply it to the
                      earlier bars. Repaired: that series' earlier bars are scaled by 1/r
                      (and, for close, volume by r: the share count scales too). Only 1/r:
                      an r:1 split divides the price by r (a reverse split, r < 1, too), so
                      a jump *by r* on a split day is no unapplied split; it is believed
                      unless beyond MOVE_LIMIT (the test market's `inject_split` and one
                      sp500_daily day, ANTM 2002-03-18, look like that).
    split_mismatch    a split day whose move is nearer the unapplied ratio than no jump at
                      all, but not within tolerance: neither reading is exact. Quarantined.
    unit_change       no split, and a series jumps by 1/100 or 100 within tolerance: a London
                      stock switching between pence and pounds. Repaired: the earlier bars are
                      scaled by 1/100 or 100; volume is untouched (the share count did not
                      change).
    extreme_move      anything else beyond MOVE_LIMIT. Quarantined; labels and training leave
                      out the days whose horizon or feature windows hold it (backtest.labels).

Repairs always scale the *earlier* segment to the unit of the later one: the newest bars are
what Yahoo serves now and will keep serving, and an incremental fetch compares its overlap
with the stored newest bars and appends in the current unit, so the stored history must be
in that unit. Scaling a segment by a constant leaves every move inside it unchanged, so one
pass over the original moves finds every event, and several events compose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

# A series' jump matches a factor when |log(jump / factor)| <= log(1 + MATCH_TOLERANCE).
# The jump holds the day's genuine move on top of the factor; 5% keeps about 96% of days
# (in sp500_daily, 4.4% of daily moves exceed 5%, 23% exceed 2%), and a genuine move that
# lands within 5% of an unapplied split (-48%..-52% on a 2:1 split day) or of 1/100 does not
# happen. A miss is not silent: it is quarantined as split_mismatch or extreme_move.
MATCH_TOLERANCE = 0.05
# A one-day move beyond this factor either way (below -90% or above +900%) is not believed.
# The largest moves in 1.67 million sp500_daily days (1999-2021) are -68% and +105%; every
# error we know of (pence/pounds, unadjusted 10:1 or larger splits) is at least this large.
MOVE_LIMIT = 10.0
# Pence to pounds (GBp -> GBP), and the same for other minor units (ZAc, ILA).
UNIT_FACTOR = 100.0

REPAIRED = "repaired"
QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Finding:
    date: date  # the day of the move (its close against the previous bar's close)
    kind: str  # unadjusted_split, split_mismatch, unit_change, extreme_move
    detail: str
    action: str  # 'repaired' or 'quarantined'


def _matching(log_jump: float, factors: tuple[float, ...], tol: float) -> float | None:
    for factor in factors:
        if abs(log_jump - math.log(factor)) <= tol:
            return factor
    return None


def check_history(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[pl.DataFrame, list[Finding]]:
    """(bars with exact repairs applied, findings in date order). `bars` is one symbol's
    parsed chart in date order (ingest.yahoo.BAR_SCHEMA); `actions` its events (only
    splits are read). Bars come back unchanged, value for value, when nothing is repaired."""
    if bars.height < 2:
        return bars, []
    close = bars["close"].to_numpy()
    adjclose = bars["adjclose"].to_numpy()
    splits = {
        day: value
        for day, kind, value in actions.select("date", "kind", "value").iter_rows()
        if kind == "split" and value > 0
    }
    jump_close = np.diff(np.log(close))
    jump_adj = np.diff(np.log(adjclose))
    tol = math.log1p(MATCH_TOLERANCE)
    limit = math.log(MOVE_LIMIT)
    beyond = np.maximum(np.abs(jump_close), np.abs(jump_adj)) > limit
    if not splits and not beyond.any():  # the usual case, decided without Python objects
        return bars, []
    dates = bars["date"].to_list()
    split_rows = {i for i in range(1, bars.height) if dates[i] in splits}
    candidates = sorted(split_rows | set((np.flatnonzero(beyond) + 1).tolist()))

    price_scale = np.ones(bars.height)
    adj_scale = np.ones(bars.height)
    volume_scale = np.ones(bars.height)
    findings: list[Finding] = []
    for i in candidates:
        lc, la = float(jump_close[i - 1]), float(jump_adj[i - 1])
        moves = f"close x{math.exp(lc):.4g}, adjclose x{math.exp(la):.4g} on the previous bar"
        ratio = splits.get(dates[i])
        if ratio is not None:
            kind, factors = "unadjusted_split", (1.0 / ratio,)
        else:
            kind, factors = "unit_change", (1.0 / UNIT_FACTOR, UNIT_FACTOR)
        on_close = _matching(lc, factors, tol)
        on_adj = _matching(la, factors, tol)
        if on_close is not None or on_adj is not None:
            scaled = []
            if on_close is not None:
                price_scale[:i] *= on_close
                if ratio is not None:
                    volume_scale[:i] /= on_close
                scaled.append(f"open/high/low/close x{on_close:g}")
            if on_adj is not None:
                adj_scale[:i] *= on_adj
                scaled.append(f"adjclose x{on_adj:g}")
            event = f"split {ratio:g} reported" if ratio is not None else "no split"
            detail = f"{moves}, {event}: earlier bars scaled, {', '.join(scaled)}"
            findings.append(Finding(dates[i], kind, detail, REPAIRED))
        elif ratio is not None and any(abs(x + math.log(ratio)) < abs(x) for x in (lc, la)):
            detail = f"{moves}, split {ratio:g} reported: neither applied nor exactly unapplied"
            findings.append(Finding(dates[i], "split_mismatch", detail, QUARANTINED))
        elif max(abs(lc), abs(la)) > limit:
            event = f"split {ratio:g} reported" if ratio is not None else "no split"
            detail = f"{moves}, {event}: beyond the x{MOVE_LIMIT:g} one-day limit"
            findings.append(Finding(dates[i], "extreme_move", detail, QUARANTINED))
    if not any(f.action == REPAIRED for f in findings):
        return bars, findings
    price, adj, volume = (pl.Series(s) for s in (price_scale, adj_scale, volume_scale))
    repaired = bars.with_columns(
        *(pl.col(c) * price for c in ("open", "high", "low", "close")),
        pl.col("adjclose") * adj,
        (pl.col("volume").cast(pl.Float64) * volume).round().cast(pl.Int64),
    )
    return repaired, findings


def needs_full_history(bars: pl.DataFrame, actions: pl.DataFrame) -> bool:
    """True when a repair is due: it rescales bars before the window, so an incremental
    fetch must become a full one."""
    return any(f.action == REPAIRED for f in check_history(bars, actions)[1])
