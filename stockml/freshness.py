"""Whether a symbol's newest signal is today's to act on: the one rule the page and
`stockml signals` share.

A signal of day `d` is stale when the symbol's prices go on past `d` (it was scored before
the newest ingest: score again) or when `d` is more than STALE_AFTER older than the last
closed session (no newer bar: an ingest that fails for it, a delisted symbol). Each symbol
keeps its own date, so a crypto symbol's Sunday or a stock ingested a session further hides
no other symbol's signal.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

# A long weekend is 4 calendar days (Friday to Tuesday): older than that is stale.
STALE_AFTER = timedelta(days=4)


def last_closed(today: date | None = None) -> date:
    """The newest session of the New York exchange that has closed (ingest.plan's rule)."""
    from ingest.plan import last_closed_day

    return last_closed_day(today or date.today())


def stale_reason(day: date, close_date: date | None, closed: date) -> str | None:
    """Why a symbol's newest signal (of `day`) should not be traded as today's, else None:
    its prices go on past it (`close_date`, its newest bar), or it is more than STALE_AFTER
    older than the last closed session `closed`."""
    if close_date is not None and close_date > day:
        return f"bars up to {close_date} are stored: score again with `stockml signals`"
    if closed - day > STALE_AFTER:
        return f"no bar since {day}: the last closed session is {closed}"
    return None


def with_stale(frame: pl.DataFrame, newest_bar: dict[str, date], closed: date) -> pl.DataFrame:
    """`frame` (symbol, date, ...) with a `stale` column: the reason, or null when current.
    `newest_bar`: each symbol's newest stored bar."""
    reasons = [
        stale_reason(day, newest_bar.get(symbol), closed)
        for symbol, day in zip(frame["symbol"], frame["date"], strict=True)
    ]
    return frame.with_columns(stale=pl.Series(reasons, dtype=pl.String))
