"""`price_holes`: sessions a symbol's answer lacked, which Yahoo may fill later.

Yahoo sometimes serves a session with null prices, or leaves it out, and backfills it days
later. Such a day is a hole: recorded the first time an answer lacks it, asked for again by
every later run (the resume plan reaches back to the oldest open hole), and closed when an
answer has it (`filled`) or after HOLE_CHECKS answers still without it (`permanent`). A hole
older than HOLE_DAYS before the newest day of the answer that found it is recorded as
permanent at once: Yahoo's backfills come within days or weeks, and an old gap is not worth
fetching a decade again for (a year back is one request either way).

    null     the answer had the day's timestamp with a null price (`dropped_null` counts them)
    missing  most of the symbol's calendar peers (same exchange time zone, at least two of
             them and half of those listed that day) have a bar that day, and it has none;
             looked for in the newest HOLE_DAYS of each stored window only (an older gap
             would be permanent at once, and the search scans the calendar's prices from
             the window's start: 1.1 s after a first ingest of 500 x 20 years, 2.6 M bars,
             0.34 s after an update, where whole histories took 2.3 s)

Both are written in the transaction that stores the symbol's bars (`update_holes`), except
`missing`, which needs every symbol of the run stored first (`record_missing_sessions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from stockml.store.connection import registered, utcnow

HOLE_CHECKS = 5
HOLE_DAYS = 365
# A symbol whose answer did not say its zone (older stores) is dated in New York.
DEFAULT_ZONE = "America/New_York"


def _status(days_old: str) -> str:
    return f"CASE WHEN {days_old} > {HOLE_DAYS} THEN 'permanent' ELSE 'open' END"


def update_holes(con: duckdb.DuckDBPyConnection, writes: Sequence[Any], now: datetime) -> None:
    """Inside the caller's transaction, after the writes' bars are in `prices`: record each
    write's new null days, then settle every open hole its window covered (filled when a
    bar is there now, one more check otherwise). `writes` are store.SymbolWrite values."""
    windows = [
        (w.symbol, w.replace_from or w.fetched_from, w.fetched_through)
        for w in writes
        if w.fetched_through is not None
    ]
    if not windows:
        return
    nulls = [(w.symbol, d, w.fetched_through) for w in writes for d in w.null_dates]
    if nulls:
        frame = pl.DataFrame(
            nulls, schema={"symbol": pl.String, "date": pl.Date, "newest": pl.Date}, orient="row"
        )
        with registered(con, "_nulls", frame):
            con.execute(
                "INSERT OR IGNORE INTO price_holes SELECT symbol, date, 'null', "
                f"{_status('newest - date')}, 0, ?, ? FROM _nulls",
                [now, now],
            )
    frame = pl.DataFrame(
        windows, schema={"symbol": pl.String, "lo": pl.Date, "hi": pl.Date}, orient="row"
    )
    with registered(con, "_windows", frame):
        _settle(con, now)


def _settle(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Open holes inside `_windows`: filled where `prices` has the day, else checked once more."""
    inside = (
        "h.status = 'open' AND EXISTS (SELECT 1 FROM _windows w WHERE w.symbol = h.symbol "
        "AND h.date BETWEEN coalesce(w.lo, h.date) AND w.hi)"
    )
    has_bar = "EXISTS (SELECT 1 FROM prices p WHERE p.symbol = h.symbol AND p.date = h.date)"
    con.execute(
        f"UPDATE price_holes h SET status = 'filled', updated_at = ? WHERE {inside} AND {has_bar}",
        [now],
    )
    con.execute(
        f"UPDATE price_holes h SET checks = checks + 1, updated_at = ?, status = CASE WHEN "
        f"checks + 1 >= {HOLE_CHECKS} THEN 'permanent' ELSE status END "
        f"WHERE {inside} AND NOT {has_bar}",
        [now],
    )


def record_missing_sessions(
    con: duckdb.DuckDBPyConnection, written: Sequence[tuple[str, date | None]]
) -> int:
    """Record as `missing` holes the sessions of their calendar that the `written` symbols
    (symbol, first day of the window just stored; None: all) lack. Returns how many new."""
    if not written:
        return 0
    now = utcnow()
    frame = pl.DataFrame(list(written), schema={"symbol": pl.String, "lo": pl.Date}, orient="row")
    before = con.execute("SELECT count(*) FROM price_holes").fetchone()[0]
    with registered(con, "_written", frame):
        con.execute(
            f"""
            INSERT OR IGNORE INTO price_holes
            WITH listed AS (
                SELECT symbol, coalesce(exchange_timezone, '{DEFAULT_ZONE}') AS zone,
                       first_date, last_date
                FROM ingest_status WHERE rows > 0 AND status = 'ok'
            ),
            windows AS (
                SELECT w.symbol, l.zone, l.last_date,
                       greatest(coalesce(w.lo, l.first_date), l.first_date,
                                l.last_date - {HOLE_DAYS}) AS lo
                FROM _written w JOIN listed l USING (symbol)
            ),
            zones AS (SELECT zone, min(lo) AS lo FROM windows GROUP BY zone),
            traded AS (
                SELECT l.zone, p.date, count(*) AS n FROM prices p JOIN listed l USING (symbol)
                JOIN zones z ON z.zone = l.zone WHERE p.date >= z.lo GROUP BY ALL
            ),
            calendar AS (
                SELECT t.zone, t.date FROM traded t JOIN listed l
                  ON l.zone = t.zone AND t.date BETWEEN l.first_date AND l.last_date
                GROUP BY t.zone, t.date, t.n HAVING t.n >= 2 AND 2 * t.n >= count(*)
            ),
            lacking AS (
                SELECT w.symbol, c.date, w.last_date FROM windows w
                JOIN calendar c ON c.zone = w.zone AND c.date BETWEEN w.lo AND w.last_date
                WHERE NOT EXISTS (
                    SELECT 1 FROM prices p WHERE p.symbol = w.symbol AND p.date = c.date)
            )
            SELECT symbol, date, 'missing', {_status("last_date - date")}, 1, ?, ?
            FROM lacking
            """,
            [now, now],
        )
    return con.execute("SELECT count(*) FROM price_holes").fetchone()[0] - before


def hole_counts(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, int]:
    """Open holes per symbol (symbols with none are absent)."""
    rows = con.execute(
        "SELECT symbol, count(*) FROM price_holes WHERE status = 'open' "
        "AND symbol IN (SELECT unnest(?)) GROUP BY symbol",
        [list(symbols)],
    ).fetchall()
    return dict(rows)
