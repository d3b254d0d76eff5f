"""One symbol's history checked for prices that contradict themselves; repaired where the
evidence is exact, quarantined where it is not. Pure: bars and actions in, bars and findings
out; nothing about HTTP or the store.

Each day's move is the ratio of its close to the previous bar's close, measured twice: on
`close` (drives open/high/low/close) and on `adjclose` (what features and labels use). A
day is looked at when a split is reported on it or when either move is beyond MOVE_LIMIT:

    unadjusted_split  a split r reported, and a series jumps by 1/r within MATCH_TOLERANCE
                      on the event's day or one trading day either side of it (Yahoo has
                      dated events a day early, and on the weekend before: the event's day is
                      then the first bar on or after it): Yahoo reported the split but did
                      not apply it to the earlier bars. Repaired: that series' earlier bars
                      are scaled by 1/r (and, for close, volume by r: the share count scales
                      too). A reported r < 1 whose price falls by r is a forward split with
                      its ratio inverted (numerator and denominator swapped: a reverse split
                      never makes the price fall), repaired the same way by r. A jump *by r*
                      for r > 1 is no unapplied split; it is believed unless beyond
                      MOVE_LIMIT (the test market's `inject_split` and one sp500_daily day,
                      ANTM 2002-03-18, look like that). A 1:1 split is no event.
    split_mismatch    a split day whose move is nearer the unapplied ratio than no jump at
                      all, but not within tolerance: neither reading is exact. Quarantined.
    unit_change       no split, and a series jumps by 1/100 or 100 within tolerance: a London
                      stock switching between pence and pounds. Repaired: the earlier bars are
                      scaled by 1/100 or 100; volume is untouched (the share count did not
                      change).
    extreme_move      anything else beyond MOVE_LIMIT. Quarantined; labels and training leave
                      out the days whose horizon or feature windows hold it (backtest.labels).
    missing_adjclose  Yahoo's answer had no adjclose but reported dividends, so adjclose =
                      close would show a false drop on every ex-date. Repaired: adjclose is
                      rebuilt by Yahoo's own (CRSP) method, each ex-date scaling the earlier
                      bars by 1 - dividend / previous close (on sp500_daily it stays within
                      0.5 % of Yahoo's over 20 years; day-to-day returns agree to 1e-5); the
                      next answer that carries adjclose replaces the whole history
                      (`ingest.fetch`). Without a dividend, adjclose = close is exact: no flag.

Repairs always scale the *earlier* segment to the unit of the later one: the newest bars are
what Yahoo serves now and will keep serving, and an incremental fetch compares its overlap
with the stored newest bars and appends in the current unit, so the stored history must be
in that unit. Scaling a segment by a constant leaves every move inside it unchanged, so one
pass over the original moves finds every event, and several events compose.
"""

from __future__ import annotations

import bisect
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
# A split ratio this close to 1 is no split (Yahoo reports 1:1 "splits" around spin-offs).
NO_SPLIT = 1e-9
# Trading days either side of a split event's day on which its price effect is looked for.
SPLIT_DAY_SLACK = 1

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


def rebuild_adjclose(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """(bars with adjclose rebuilt from close and the dividends, dividends used): Yahoo's
    method, each ex-date t scaling the bars before it by 1 - dividend_t / close_(t-1)."""
    dividends = actions.filter(pl.col("kind") == "dividend")
    if bars.height < 2 or dividends.is_empty():
        return bars, 0
    close = bars["close"].to_numpy()
    factor = np.ones(bars.height)
    used = 0
    rows = np.searchsorted(bars["date"].to_numpy(), dividends["date"].to_numpy())
    for i, amount in zip(rows.tolist(), dividends["value"].to_list(), strict=True):
        if 0 < i < bars.height and 0 < amount < close[i - 1]:
            factor[:i] *= 1.0 - amount / close[i - 1]
            used += 1
    return bars.with_columns(adjclose=pl.Series(close * factor)), used


def _split_events(dates: list, actions: pl.DataFrame) -> dict[int, tuple[float, date]]:
    """Row of each split's event day (the first bar on or after it) -> (ratio, event day)."""
    rows: dict[int, tuple[float, date]] = {}
    for day, kind, value in actions.select("date", "kind", "value").iter_rows():
        if kind == "split" and value > 0 and abs(math.log(value)) > NO_SPLIT:
            i = bisect.bisect_left(dates, day)
            if 0 < i < len(dates):
                rows[i] = (value, day)
    return rows


def _split_factors(ratio: float) -> tuple[float, ...]:
    """The jumps an unapplied split of `ratio` may show: 1/r, and r when r < 1 (inverted)."""
    return (1.0 / ratio, ratio) if ratio < 1 else (1.0 / ratio,)


def _split_day(event: int, ratio: float, jumps: tuple[np.ndarray, ...], tol: float) -> int:
    """The row where a split's unapplied jump shows: the event's row if it matches there,
    else the nearest row within SPLIT_DAY_SLACK that matches, else the event's row."""
    factors = _split_factors(ratio)
    nearby = [event + k for s in range(1, SPLIT_DAY_SLACK + 1) for k in (s, -s)]
    for i in [event, *nearby]:
        inside = 1 <= i <= len(jumps[0])
        if inside and any(_matching(float(j[i - 1]), factors, tol) is not None for j in jumps):
            return i
    return event


def check_history(
    bars: pl.DataFrame, actions: pl.DataFrame, has_adjclose: bool = True
) -> tuple[pl.DataFrame, list[Finding]]:
    """(bars with exact repairs applied, findings in date order). `bars` is one symbol's
    parsed chart in date order (ingest.yahoo.BAR_SCHEMA); `actions` its events (splits, and
    dividends when `has_adjclose` is False: Yahoo sent no adjclose). Bars come back
    unchanged, value for value, when nothing is repaired."""
    if bars.height < 2:
        return bars, []
    findings: list[Finding] = []
    if not has_adjclose:
        bars, used = rebuild_adjclose(bars, actions)
        if used:
            detail = (
                f"adjclose absent from Yahoo's answer: rebuilt from close and {used} dividends "
                "(each ex-date scales earlier bars by 1 - dividend / previous close)"
            )
            findings.append(Finding(bars["date"][0], "missing_adjclose", detail, REPAIRED))
    close = bars["close"].to_numpy()
    adjclose = bars["adjclose"].to_numpy()
    jump_close = np.diff(np.log(close))
    jump_adj = np.diff(np.log(adjclose))
    tol = math.log1p(MATCH_TOLERANCE)
    limit = math.log(MOVE_LIMIT)
    beyond = np.maximum(np.abs(jump_close), np.abs(jump_adj)) > limit
    has_split = (actions["kind"] == "split").any()
    if not has_split and not beyond.any():  # the usual case, decided without Python objects
        return bars, findings
    dates = bars["date"].to_list()
    splits = {
        _split_day(i, r, (jump_close, jump_adj), tol): (r, day)
        for i, (r, day) in _split_events(dates, actions).items()
    }
    candidates = sorted(set(splits) | set((np.flatnonzero(beyond) + 1).tolist()))

    price_scale = np.ones(bars.height)
    adj_scale = np.ones(bars.height)
    volume_scale = np.ones(bars.height)
    for i in candidates:
        lc, la = float(jump_close[i - 1]), float(jump_adj[i - 1])
        moves = f"close x{math.exp(lc):.4g}, adjclose x{math.exp(la):.4g} on the previous bar"
        ratio, event = splits.get(i, (None, dates[i]))
        if ratio is not None:
            kind, factors = "unadjusted_split", _split_factors(ratio)
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
            detail = f"{moves}, {_reported(ratio, event, dates[i])}: earlier bars scaled, "
            findings.append(Finding(dates[i], kind, detail + ", ".join(scaled), REPAIRED))
        elif ratio is not None and any(abs(x + math.log(ratio)) < abs(x) for x in (lc, la)):
            detail = f"{moves}, split {ratio:g} reported: neither applied nor exactly unapplied"
            findings.append(Finding(dates[i], "split_mismatch", detail, QUARANTINED))
        elif max(abs(lc), abs(la)) > limit:
            detail = f"{moves}, {_reported(ratio, event, dates[i])}: beyond the "
            detail += f"x{MOVE_LIMIT:g} one-day limit"
            findings.append(Finding(dates[i], "extreme_move", detail, QUARANTINED))
    findings.sort(key=lambda f: f.date)
    if not any(f.action == REPAIRED and f.kind != "missing_adjclose" for f in findings):
        return bars, findings
    price, adj, volume = (pl.Series(s) for s in (price_scale, adj_scale, volume_scale))
    repaired = bars.with_columns(
        *(pl.col(c) * price for c in ("open", "high", "low", "close")),
        pl.col("adjclose") * adj,
        (pl.col("volume").cast(pl.Float64) * volume).round().cast(pl.Int64),
    )
    return repaired, findings


def _reported(ratio: float | None, event_day: date, jump_day: date) -> str:
    if ratio is None:
        return "no split"
    when = "" if event_day == jump_day else f" dated {event_day}"
    return f"split {ratio:g} reported{when}"


def needs_full_history(
    bars: pl.DataFrame, actions: pl.DataFrame, has_adjclose: bool = True
) -> bool:
    """True when a repair is due: it rescales bars before the window, so an incremental
    fetch must become a full one."""
    return any(f.action == REPAIRED for f in check_history(bars, actions, has_adjclose)[1])
