"""`price_flags`: what ingest's price checks found (ingest.quality), per symbol and day.

Ingest writes a symbol's flags right after its bars, over the same date range (the whole
history, or the days from an incremental fetch's overlap on); labels read the quarantined
days to leave out what they touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb

from stockml.store.connection import query_pl, transaction

# (date, kind, detail, action): one finding, as ingest.quality.Finding lists its fields.
FlagRow = tuple[date, str, str, str]


def replace_price_flags(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    flags: Sequence[FlagRow],
    since: date | None = None,
) -> None:
    """Swap the symbol's flags after `since` (None: all of them) for `flags`, atomically.
    `since` is an incremental fetch's first day: its move (from the day before, not in the
    fetch) was not checked again, so a flag on it is kept."""
    with transaction(con):
        if since is None:
            con.execute("DELETE FROM price_flags WHERE symbol = ?", [symbol])
        else:
            con.execute("DELETE FROM price_flags WHERE symbol = ? AND date > ?", [symbol, since])
        if flags:
            con.executemany(
                "INSERT OR REPLACE INTO price_flags VALUES (?, ?, ?, ?, ?)",
                [(symbol, *row) for row in flags],
            )


def flagged_symbols(con: duckdb.DuckDBPyConnection, kind: str | None = None) -> set[str]:
    """Symbols with any stored flag (whose flags a new fetch may have to replace), or with
    a flag of `kind` (e.g. 'missing_adjclose': stored from an incomplete answer)."""
    sql = "SELECT DISTINCT symbol FROM price_flags" + (" WHERE kind = ?" if kind else "")
    return {r[0] for r in con.execute(sql, [kind] if kind else []).fetchall()}


def quarantined_days(con: duckdb.DuckDBPyConnection) -> Any:
    """symbol, date of every quarantined move, as a polars DataFrame sorted by both."""
    return query_pl(
        con,
        "SELECT symbol, date FROM price_flags WHERE action = 'quarantined' ORDER BY symbol, date",
    )
