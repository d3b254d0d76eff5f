"""What ingest writes and reads: `prices`, `corporate_actions`, `ingest_status`, `symbols`
(and, through `stockml.store.holes`, `price_holes` in the same transaction).

The ingester hands each symbol's outcome over as a `SymbolWrite` and reads what is stored
back as `IngestState` records; `ingest_status` rows are written from `IngestStatusRecord`,
whose field names are the table's columns (inserted by name, checked by a test). The
downstream stages read `prices` through `read_prices`, `row_counts` and
`prices_fingerprints`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from stockml.store.connection import insert_frame, query_pl, transaction, utcnow
from stockml.store.holes import update_holes


class WriteFailed(Exception):
    """A batch could not be stored; the message is DuckDB's real cause (e.g. a duplicate
    key), not the 'transaction is aborted' that a later statement in the batch reports."""


def _root_cause(exc: BaseException) -> str:
    """The first DuckDB error in the chain: once a statement fails, every later one in the
    transaction fails with TransactionException, which hides the cause."""
    cause: BaseException = exc
    seen = {id(exc)}
    while True:
        nxt = cause.__cause__ or cause.__context__
        if not isinstance(nxt, duckdb.Error) or id(nxt) in seen:
            break
        seen.add(id(nxt))
        cause = nxt
    return str(cause).splitlines()[0]


@dataclass(frozen=True)
class SymbolWrite:
    """One symbol's outcome from the ingester: fetched bars and events (ok), or an error
    (failed). A failure carries only `symbol`, `attempts`, `transport` and `error`."""

    symbol: str
    attempts: int  # HTTP requests made for the symbol in this run
    transport: str  # 'aiohttp' or 'curl': the client that fetched it
    bars: pl.DataFrame | None = None  # columns of `prices`; None for a failure
    actions: pl.DataFrame | None = None  # columns of `corporate_actions`
    replace_from: date | None = None  # None: replace the whole history
    fetched_from: date | None = None  # the window the stored history now covers
    fetched_through: date | None = None
    dropped_null: int | None = None  # rows Yahoo served with null values
    dropped_invalid: int | None = None  # rows with impossible values, kept out of prices
    error: str | None = None
    first_write: bool = False  # nothing stored for it yet: no delete needed
    invalid_volume: int | None = None  # volumes that cannot be, stored as NULL
    currency: str | None = None  # what Yahoo's answer said the history is
    exchange_timezone: str | None = None
    instrument_type: str | None = None
    null_dates: tuple[date, ...] = ()  # days served with a null price (price_holes)
    not_found: bool = False  # a failure because Yahoo answered 404
    inactive: bool = False  # a failure that makes the symbol 'inactive' (repeated 404s)


@dataclass(frozen=True)
class IngestStatusRecord:
    """One row of `ingest_status`: the field names are the table's columns."""

    symbol: str
    status: str  # 'ok' or 'failed'
    attempts: int
    rows: int
    first_date: date | None
    last_date: date | None
    error: str | None
    updated_at: datetime  # UTC
    fetched_from: date | None
    fetched_through: date | None
    dropped_null: int | None
    dropped_invalid: int | None
    transport: str | None
    invalid_volume: int | None
    not_found_runs: int
    currency: str | None
    exchange_timezone: str | None
    instrument_type: str | None


_STATUS_DTYPES = {
    "symbol": pl.String,
    "status": pl.String,
    "attempts": pl.Int32,
    "rows": pl.Int64,
    "first_date": pl.Date,
    "last_date": pl.Date,
    "error": pl.String,
    "updated_at": pl.Datetime("us"),
    "fetched_from": pl.Date,
    "fetched_through": pl.Date,
    "dropped_null": pl.Int32,
    "dropped_invalid": pl.Int32,
    "transport": pl.String,
    "invalid_volume": pl.Int32,
    "not_found_runs": pl.Int32,
    "currency": pl.String,
    "exchange_timezone": pl.String,
    "instrument_type": pl.String,
}
# What a failed fetch leaves as it was: the stored history's identity.
_KEPT_ON_FAILURE = ("currency", "exchange_timezone", "instrument_type")
_PREVIOUS = ("fetched_from", "fetched_through", "not_found_runs", *_KEPT_ON_FAILURE)


@dataclass(frozen=True)
class IngestState:
    """What one symbol's stored history covers (part of its `ingest_status` row)."""

    status: str  # 'ok', 'failed' or 'inactive'
    fetched_from: date | None
    fetched_through: date | None
    last_date: date | None
    rows: int
    currency: str | None = None
    oldest_hole: date | None = None  # the oldest open price_holes day, to refetch from
    not_found_runs: int = 0  # consecutive runs answered 404


def upsert_symbols(
    con: duckdb.DuckDBPyConnection, listings: Sequence[tuple[str, str, str]]
) -> None:
    """Names and sectors of known symbols (the built-in universes), for SQL joins."""
    if listings:
        con.executemany("INSERT OR REPLACE INTO symbols VALUES (?, ?, ?)", list(listings))


def ingest_state(con: duckdb.DuckDBPyConnection) -> dict[str, IngestState]:
    """What each symbol's stored history covers, for the resume plan."""
    rows = con.execute(
        "SELECT symbol, status, fetched_from, fetched_through, last_date, rows, currency, "
        "(SELECT min(date) FROM price_holes h WHERE h.symbol = i.symbol AND h.status = 'open'), "
        "coalesce(not_found_runs, 0) FROM ingest_status i"
    ).fetchall()
    return {r[0]: IngestState(*r[1:]) for r in rows}


def overlap_prices(
    con: duckdb.DuckDBPyConnection, symbol: str, since: date
) -> dict[date, tuple[float, ...]]:
    """Stored bars from `since` on, to compare with a fresh fetch of the same days."""
    rows = con.execute(
        "SELECT date, open, high, low, close, adjclose, volume FROM prices "
        "WHERE symbol = ? AND date >= ? ORDER BY date",
        [symbol, since],
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def stored_actions(con: duckdb.DuckDBPyConnection, symbol: str) -> set[tuple[date, str]]:
    rows = con.execute(
        "SELECT date, kind FROM corporate_actions WHERE symbol = ?", [symbol]
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def _clean_bars(w: SymbolWrite) -> SymbolWrite:
    """At most one bar per date, none before `replace_from`: whatever the fetch handed
    over, a write cannot collide with the rows it keeps (the `prices` primary key)."""
    bars = w.bars
    if bars is None or bars.height == 0:
        return w
    if w.replace_from is not None and bars["date"].min() < w.replace_from:
        bars = bars.filter(pl.col("date") >= w.replace_from)
    if bars["date"].n_unique() < bars.height:
        bars = bars.unique(subset=["date"], keep="last", maintain_order=True)
    return w if bars is w.bars else replace(w, bars=bars)


def write_batch(con: duckdb.DuckDBPyConnection, writes: Sequence[SymbolWrite]) -> dict[str, int]:
    """Store several symbols' outcomes in one transaction; rows stored per symbol.

    Each symbol is wholly in or wholly out, so a crash never leaves half a symbol;
    batching only shares the commit (and its fsync), which dominates at high rates.
    A failure leaves the symbol's stored rows as they were and records the reason.
    Raises WriteFailed (nothing of the batch stored) with DuckDB's real cause.
    """
    writes = [_clean_bars(w) if w.error is None else w for w in writes]
    try:
        return _write_batch(con, writes)
    except duckdb.Error as exc:
        raise WriteFailed(_root_cause(exc)) from exc


def _write_batch(con: duckdb.DuckDBPyConnection, writes: Sequence[SymbolWrite]) -> dict[str, int]:
    ok = [w for w in writes if w.error is None]
    symbols = [w.symbol for w in writes]
    with transaction(con):
        whole = [w.symbol for w in ok if w.replace_from is None and not w.first_write]
        if whole:
            con.execute("DELETE FROM prices WHERE symbol IN (SELECT unnest(?))", [whole])
            con.execute("DELETE FROM corporate_actions WHERE symbol IN (SELECT unnest(?))", [whole])
        for w in ok:
            if w.replace_from is not None:
                con.execute(
                    "DELETE FROM prices WHERE symbol = ? AND date >= ?", [w.symbol, w.replace_from]
                )
                con.execute(
                    "DELETE FROM corporate_actions WHERE symbol = ? AND date >= ?",
                    [w.symbol, w.replace_from],
                )
        bars = [w.bars for w in ok if w.bars is not None and w.bars.height]
        actions = [w.actions for w in ok if w.actions is not None and w.actions.height]
        if bars:
            insert_frame(
                con,
                pl.concat(bars),
                "INSERT INTO prices SELECT symbol, date, open, high, low, close, adjclose, volume "
                "FROM _new",
            )
        if actions:
            insert_frame(
                con,
                pl.concat(actions),
                "INSERT OR REPLACE INTO corporate_actions "
                "SELECT symbol, date, kind, value FROM _new",
            )
        # Row counts and date ranges: from the frame when it is the whole history,
        # from the table when rows were appended or kept.
        stats: dict[str, tuple] = {}
        for w in ok:
            if w.replace_from is None:
                if w.bars is None or w.bars.height == 0:
                    stats[w.symbol] = (0, None, None)
                else:
                    stats[w.symbol] = (w.bars.height, w.bars["date"].min(), w.bars["date"].max())
        others = [w.symbol for w in writes if w.symbol not in stats]
        if others:
            stats.update(
                {
                    r[0]: r[1:]
                    for r in con.execute(
                        "SELECT symbol, count(*), min(date), max(date) FROM prices "
                        "WHERE symbol IN (SELECT unnest(?)) GROUP BY symbol",
                        [others],
                    ).fetchall()
                }
            )
        previous = {
            r[0]: dict(zip(_PREVIOUS, r[1:], strict=True))
            for r in con.execute(
                "SELECT symbol, fetched_from, fetched_through, coalesce(not_found_runs, 0), "
                f"{', '.join(_KEPT_ON_FAILURE)} FROM ingest_status "
                "WHERE symbol IN (SELECT unnest(?))",
                [symbols],
            ).fetchall()
        }
        now = utcnow()
        records = [_status_record(w, stats, previous.get(w.symbol, {}), now) for w in writes]
        update_holes(con, [w for w in ok if w.bars is not None], now)
        insert_frame(
            con,
            pl.DataFrame([asdict(r) for r in records], schema=_STATUS_DTYPES),
            "INSERT OR REPLACE INTO ingest_status BY NAME SELECT * FROM _new",
        )
    return {w.symbol: stats.get(w.symbol, (0,))[0] for w in writes}


def _status_record(
    w: SymbolWrite, stats: dict[str, tuple], previous: dict[str, Any], now: datetime
) -> IngestStatusRecord:
    """The symbol's new `ingest_status` row. A failure keeps what the stored rows cover and
    what they are (currency, calendar); a 404 counts one more run towards 'inactive'."""
    count, first, last = stats.get(w.symbol, (0, None, None))
    fetched_from, fetched_through = w.fetched_from, w.fetched_through
    kept = {k: getattr(w, k) for k in _KEPT_ON_FAILURE}
    status, not_found_runs = "ok", 0
    if w.error is not None:
        kept = {k: previous.get(k) for k in _KEPT_ON_FAILURE}
        if previous and count > 0:
            # A failed refresh does not shrink what the stored rows already cover.
            fetched_from, fetched_through = previous["fetched_from"], previous["fetched_through"]
        not_found_runs = previous.get("not_found_runs", 0) + (1 if w.not_found else 0)
        status = "inactive" if w.inactive else "failed"
    return IngestStatusRecord(
        symbol=w.symbol,
        status=status,
        attempts=w.attempts,
        rows=count,
        first_date=first,
        last_date=last,
        error=w.error,
        updated_at=now,
        fetched_from=fetched_from,
        fetched_through=fetched_through,
        dropped_null=w.dropped_null,
        dropped_invalid=w.dropped_invalid,
        transport=w.transport,
        invalid_volume=w.invalid_volume,
        not_found_runs=not_found_runs,
        **kept,
    )


def prices_fingerprints(
    con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None
) -> dict[str, str]:
    """A cheap content hash of each symbol's stored bars: features and labels are stale
    exactly when it changes (a re-adjusted history changes every row's hash)."""
    sql = (
        "SELECT symbol, count(*)::VARCHAR || ':' || max(date)::VARCHAR || ':' || "
        "bit_xor(hash(date, open, high, low, close, adjclose, volume))::VARCHAR "
        "FROM prices {where} GROUP BY symbol"
    )
    if symbols is None:
        rows = con.execute(sql.format(where="")).fetchall()
    else:
        rows = con.execute(
            sql.format(where="WHERE symbol IN (SELECT unnest(?))"), [list(symbols)]
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def read_prices(con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None) -> Any:
    """Stored bars as a polars DataFrame sorted by symbol, then date."""
    base = "SELECT symbol, date, open, high, low, close, adjclose, volume FROM prices"
    if symbols is None:
        return query_pl(con, base + " ORDER BY symbol, date")
    return query_pl(
        con, base + " WHERE symbol IN (SELECT unnest(?)) ORDER BY symbol, date", [list(symbols)]
    )


def read_splits(con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None) -> Any:
    """symbol, date, ratio (numerator / denominator: 4.0 for a 4:1 split) of the stored
    splits of `symbols` (None: all), sorted by symbol and date."""
    base = "SELECT symbol, date, value AS ratio FROM corporate_actions WHERE kind = 'split'"
    if symbols is None:
        return query_pl(con, base + " ORDER BY symbol, date")
    return query_pl(
        con, base + " AND symbol IN (SELECT unnest(?)) ORDER BY symbol, date", [list(symbols)]
    )


def row_counts(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, int]:
    """Stored price rows per symbol (symbols with none are absent)."""
    if not symbols:
        return {}
    rows = con.execute(
        "SELECT symbol, count(*) FROM prices WHERE symbol IN (SELECT unnest(?)) GROUP BY symbol",
        [list(symbols)],
    ).fetchall()
    return {r[0]: r[1] for r in rows}
