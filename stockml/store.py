"""The DuckDB store: the only module with DDL, and the only one that opens the file.

The table and column names here are a public interface (documented in the README):
users query them with SQL, scripts depend on them. Every multi-row change a stage makes
for one symbol happens in one transaction, so a crash leaves the symbol as it was.

Tables (created on first connect, idempotently):
    prices             one row per symbol and New York trading day, Yahoo's values as served
    corporate_actions  dividends and splits, as Yahoo reports them
    ingest_status      one row per symbol: ok/failed, reason, what range was fetched
    symbols            name and GICS sector of the built-in universes' symbols
    settings           small key/value memory (e.g. the transport that last worked)
    features           symbol, date, then the catalog's columns (created by features/)
    features_status    which prices fingerprint the stored features were computed from
    labels             triple-barrier outcomes per symbol, date and profile
    labels_status      which prices fingerprint and parameters each profile's labels used
    samples (view)     features joined with labels: the table users query
    training_runs, model_metrics, signals   written by training/
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from stockml.errors import StoreError

DEFAULT_DB = Path("data/stockml.duckdb")

_CORE_DDL = """
CREATE TABLE IF NOT EXISTS prices (
    symbol    VARCHAR NOT NULL,
    date      DATE    NOT NULL,
    open      DOUBLE  NOT NULL,
    high      DOUBLE  NOT NULL,
    low       DOUBLE  NOT NULL,
    close     DOUBLE  NOT NULL,
    adjclose  DOUBLE  NOT NULL,
    volume    BIGINT,
    PRIMARY KEY (symbol, date)
);
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol  VARCHAR NOT NULL,
    date    DATE    NOT NULL,
    kind    VARCHAR NOT NULL,   -- 'dividend' (cash per share) or 'split' (numerator/denominator)
    value   DOUBLE  NOT NULL,
    PRIMARY KEY (symbol, date, kind)
);
CREATE TABLE IF NOT EXISTS ingest_status (
    symbol          VARCHAR PRIMARY KEY,
    status          VARCHAR NOT NULL,   -- 'ok' or 'failed'
    attempts        INTEGER NOT NULL,   -- HTTP requests made for the symbol in the last run
    rows            BIGINT  NOT NULL,   -- rows stored in prices
    first_date      DATE,
    last_date       DATE,
    error           VARCHAR,            -- why it failed (NULL when ok)
    updated_at      TIMESTAMP NOT NULL, -- UTC
    fetched_from    DATE,               -- the stored history covers [fetched_from, fetched_through]
    fetched_through DATE,
    dropped_null    INTEGER,            -- rows Yahoo served with null values (last fetch)
    dropped_invalid INTEGER,            -- rows with impossible values kept out of prices
    transport       VARCHAR             -- 'aiohttp' or 'curl': which client fetched it
);
CREATE TABLE IF NOT EXISTS symbols (
    symbol  VARCHAR PRIMARY KEY,
    name    VARCHAR,
    sector  VARCHAR             -- GICS sector, for per-sector questions in SQL
);
CREATE TABLE IF NOT EXISTS settings (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS features_status (
    symbol              VARCHAR PRIMARY KEY,
    prices_fingerprint  VARCHAR NOT NULL,
    catalog_version     VARCHAR NOT NULL,
    rows                BIGINT  NOT NULL,
    computed_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    symbol       VARCHAR  NOT NULL,
    date         DATE     NOT NULL,
    profile      VARCHAR  NOT NULL,
    label        TINYINT,            -- +1 win, 0 timeout, -1 loss; NULL in the last H days
    exit_offset  SMALLINT,           -- trading days from entry to exit (H on timeout)
    exit_return  DOUBLE,
    mfe          DOUBLE,             -- maximum favourable excursion (high vs entry)
    mae          DOUBLE              -- maximum adverse excursion (low vs entry, <= 0)
);
CREATE TABLE IF NOT EXISTS labels_status (
    symbol              VARCHAR NOT NULL,
    profile             VARCHAR NOT NULL,
    prices_fingerprint  VARCHAR NOT NULL,
    params              VARCHAR NOT NULL,
    rows                BIGINT  NOT NULL,
    computed_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, profile)
);
CREATE TABLE IF NOT EXISTS training_runs (
    run_id            VARCHAR PRIMARY KEY,
    created_at        TIMESTAMP NOT NULL,
    profile           VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,   -- 'running', 'done'
    train_start       DATE,
    train_end         DATE,
    test_start        DATE,
    test_end          DATE,
    n_train           BIGINT,
    n_test            BIGINT,
    data_fingerprint  VARCHAR,
    code_version      VARCHAR,
    params            VARCHAR,            -- JSON
    run_dir           VARCHAR
);
CREATE TABLE IF NOT EXISTS model_metrics (
    run_id  VARCHAR NOT NULL,
    model   VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    value   DOUBLE,
    PRIMARY KEY (run_id, model, metric)
);
CREATE TABLE IF NOT EXISTS signals (
    run_id     VARCHAR NOT NULL,
    symbol     VARCHAR NOT NULL,
    date       DATE    NOT NULL,
    signal     VARCHAR NOT NULL,   -- 'BUY CALL', 'BUY PUT', 'HOLD'
    p_win      DOUBLE,
    p_timeout  DOUBLE,
    p_loss     DOUBLE,
    PRIMARY KEY (run_id, symbol, date)
);
"""

_LOCK_PID = re.compile(r"PID (\d+)")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store, mapping file problems to one-line StoreErrors."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise StoreError(f"--db {path} is a directory, not a DuckDB file")
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}: run `stockml ingest` first (or pass --db)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _LOCK_PID.search(text)
            who = f" (pid {pid.group(1)})" if pid else ""
            raise StoreError(
                f"{path} is in use by another stockml process{who}; wait for it or use another --db"
            ) from exc
        if "permission" in text.lower() or "read-only" in text.lower():
            raise StoreError(f"cannot write {path}: permission denied") from exc
        raise StoreError(f"cannot open {path}: {text.splitlines()[0]}") from exc
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {path}: {str(exc).splitlines()[0]}") from exc
    if not read_only:
        try:
            con.execute(_CORE_DDL)
        except duckdb.Error as exc:
            con.close()
            raise StoreError(f"cannot initialise {path}: {str(exc).splitlines()[0]}") from exc
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a crash or exception inside leaves the store as it was."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


# ---- settings ---------------------------------------------------------------------------


def get_setting(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def set_setting(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])


def upsert_symbols(
    con: duckdb.DuckDBPyConnection, listings: Sequence[tuple[str, str, str]]
) -> None:
    """Names and sectors of known symbols (the built-in universes), for SQL joins."""
    if listings:
        con.executemany("INSERT OR REPLACE INTO symbols VALUES (?, ?, ?)", list(listings))


# ---- ingest -----------------------------------------------------------------------------


def ingest_state(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """What each symbol's stored history covers, for the resume plan."""
    rows = con.execute(
        "SELECT symbol, status, fetched_from, fetched_through, last_date, rows FROM ingest_status"
    ).fetchall()
    return {
        r[0]: {
            "status": r[1],
            "fetched_from": r[2],
            "fetched_through": r[3],
            "last_date": r[4],
            "rows": r[5],
        }
        for r in rows
    }


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


_STATUS_SCHEMA = {
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
}


def _insert_from(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, sql: str) -> None:
    con.register("_new", frame.to_arrow())
    try:
        con.execute(sql)
    finally:
        con.unregister("_new")


@dataclass
class SymbolWrite:
    """One symbol's outcome: fetched bars and events (ok), or an error (failed)."""

    symbol: str
    status: dict[str, Any]
    bars: pl.DataFrame | None = None  # columns of `prices`; None for a failure
    actions: pl.DataFrame | None = None  # columns of `corporate_actions`
    replace_from: date | None = None  # None: replace the whole history
    error: str | None = None
    first_write: bool = False  # nothing stored for it yet: no delete needed


def write_batch(con: duckdb.DuckDBPyConnection, writes: Sequence[SymbolWrite]) -> dict[str, int]:
    """Store several symbols' outcomes in one transaction; rows stored per symbol.

    Each symbol is wholly in or wholly out, so a crash never leaves half a symbol;
    batching only shares the commit (and its fsync), which dominates at high rates.
    A failure leaves the symbol's stored rows as they were and records the reason.
    """
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
            _insert_from(
                con,
                pl.concat(bars),
                "INSERT INTO prices SELECT symbol, date, open, high, low, close, adjclose, volume "
                "FROM _new",
            )
        if actions:
            _insert_from(
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
                frame = w.bars if w.bars is not None else None
                if frame is None or frame.height == 0:
                    stats[w.symbol] = (0, None, None)
                else:
                    stats[w.symbol] = (frame.height, frame["date"].min(), frame["date"].max())
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
            r[0]: r[1:]
            for r in con.execute(
                "SELECT symbol, fetched_from, fetched_through FROM ingest_status "
                "WHERE symbol IN (SELECT unnest(?))",
                [symbols],
            ).fetchall()
        }
        now = _utcnow()
        rows = []
        for w in writes:
            count, first, last = stats.get(w.symbol, (0, None, None))
            fetched_from = w.status.get("fetched_from")
            fetched_through = w.status.get("fetched_through")
            if w.error is not None and w.symbol in previous and count > 0:
                # A failed refresh does not shrink what the stored rows already cover.
                fetched_from, fetched_through = previous[w.symbol]
            rows.append(
                [
                    w.symbol,
                    "ok" if w.error is None else "failed",
                    w.status.get("attempts", 0),
                    count,
                    first,
                    last,
                    w.error,
                    now,
                    fetched_from,
                    fetched_through,
                    w.status.get("dropped_null"),
                    w.status.get("dropped_invalid"),
                    w.status.get("transport"),
                ]
            )
        # One INSERT from a frame: executemany costs ~2 ms a row in DuckDB.
        _insert_from(
            con,
            pl.DataFrame(rows, schema=_STATUS_SCHEMA, orient="row"),
            "INSERT OR REPLACE INTO ingest_status SELECT * FROM _new",
        )
    return {w.symbol: stats.get(w.symbol, (0,))[0] for w in writes}


# ---- downstream stages ------------------------------------------------------------------


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


def query_pl(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """A query's rows as a polars DataFrame (zero-copy from DuckDB's Arrow output).

    DuckDB 2 refuses `con.sql()` while an `execute()` result is unfinished, so finish it.
    """
    con.complete()
    return con.sql(sql, params=list(params) if params is not None else None).pl()


def read_prices(con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None) -> Any:
    """Stored bars as a polars DataFrame sorted by symbol, then date."""
    base = "SELECT symbol, date, open, high, low, close, adjclose, volume FROM prices"
    if symbols is None:
        return query_pl(con, base + " ORDER BY symbol, date")
    return query_pl(
        con, base + " WHERE symbol IN (SELECT unnest(?)) ORDER BY symbol, date", [list(symbols)]
    )


# Feature columns are stored as REAL (float32). The kernels compute in float64 (equal to
# TA-Lib at 1e-9); the store keeps 7 significant digits, which is what the tree models use
# anyway (they bin or cast to float32), and halves the write that dominates the backtest.
FEATURE_SQL_TYPE = "FLOAT"


def ensure_features_table(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    """Create `features` with the catalog's columns, or recreate it (features are derived
    data: recomputed from prices) when the catalog or the storage type changed."""
    existing = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'features' ORDER BY ordinal_position"
    ).fetchall()
    wanted = [("symbol", "VARCHAR"), ("date", "DATE")] + [(c, FEATURE_SQL_TYPE) for c in columns]
    if [(name, kind) for name, kind in existing] == wanted:
        return
    for name in columns:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"bad feature column name {name!r}")
    cols = ",\n    ".join(f"{name} {FEATURE_SQL_TYPE}" for name in columns)
    with transaction(con):
        con.execute("DROP VIEW IF EXISTS samples")
        con.execute("DROP TABLE IF EXISTS features")
        con.execute("DELETE FROM features_status")
        con.execute(
            f"CREATE TABLE features (\n    symbol VARCHAR NOT NULL,\n    date DATE NOT NULL,\n"
            f"    {cols}\n)"
        )
        con.execute(
            "CREATE VIEW samples AS SELECT f.*, l.profile, l.label, l.exit_offset, "
            "l.exit_return, l.mfe, l.mae FROM features f "
            "JOIN labels l USING (symbol, date)"
        )


def features_state(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """symbol -> (prices fingerprint, catalog version) the stored features came from."""
    rows = con.execute(
        "SELECT symbol, prices_fingerprint, catalog_version FROM features_status"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def symbol_batches(sizes: dict[str, int], max_rows: int) -> list[list[str]]:
    """Symbols grouped (in name order) so each group holds about `max_rows` price rows:
    a group is one kernel call and one transaction, and bounds memory."""
    batches: list[list[str]] = [[]]
    rows = 0
    for symbol in sorted(sizes):
        if batches[-1] and rows + sizes[symbol] > max_rows:
            batches.append([])
            rows = 0
        batches[-1].append(symbol)
        rows += sizes[symbol]
    return [b for b in batches if b]


def row_counts(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, int]:
    if not symbols:
        return {}
    rows = con.execute(
        "SELECT symbol, count(*) FROM prices WHERE symbol IN (SELECT unnest(?)) GROUP BY symbol",
        [list(symbols)],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def delete_features(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> None:
    with transaction(con):
        con.execute("DELETE FROM features WHERE symbol IN (SELECT unnest(?))", [list(symbols)])
        con.execute(
            "DELETE FROM features_status WHERE symbol IN (SELECT unnest(?))", [list(symbols)]
        )


def feature_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Computed features as stored: float32, NaN (warm-up) as NULL. Touches only float64
    columns, so a frame already converted (off the writer's thread) costs nothing."""
    return frame.with_columns(pl.col(pl.Float64).cast(pl.Float32).fill_nan(None))


def replace_features(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    frame: pl.DataFrame,
    fingerprints: dict[str, str],
    catalog_version: str,
) -> None:
    """Swap in freshly computed features for `symbols` (rows and status together).
    NaN (warm-up) is stored as NULL, so SQL aggregates skip it. Written uncompressed:
    DuckDB's float codecs saved ~15% of the file here and cost ~30% of the write time."""
    status = pl.DataFrame(
        {
            "symbol": list(symbols),
            "prices_fingerprint": [fingerprints[s] for s in symbols],
            "catalog_version": [catalog_version] * len(symbols),
            "rows": [0] * len(symbols),
            "computed_at": [_utcnow()] * len(symbols),
        },
        schema_overrides={"rows": pl.Int64},
    )
    counts = frame.group_by("symbol").len()
    status = status.drop("rows").join(counts.rename({"len": "rows"}), on="symbol", how="left")
    status = status.select(
        "symbol",
        "prices_fingerprint",
        "catalog_version",
        pl.col("rows").fill_null(0),
        "computed_at",
    )
    values = feature_rows(frame)
    con.execute("SET force_compression = 'uncompressed'")
    try:
        with transaction(con):
            con.execute("DELETE FROM features WHERE symbol IN (SELECT unnest(?))", [list(symbols)])
            _insert_from(con, values, "INSERT INTO features SELECT * FROM _new")
            _insert_from(con, status, "INSERT OR REPLACE INTO features_status SELECT * FROM _new")
    finally:
        con.execute("RESET force_compression")


def labels_state(con: duckdb.DuckDBPyConnection, profile: str) -> dict[str, tuple[str, str]]:
    """symbol -> (prices fingerprint, profile parameters) the stored labels came from."""
    rows = con.execute(
        "SELECT symbol, prices_fingerprint, params FROM labels_status WHERE profile = ?",
        [profile],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def delete_labels(con: duckdb.DuckDBPyConnection, profile: str, symbols: Sequence[str]) -> None:
    with transaction(con):
        for table in ("labels", "labels_status"):
            con.execute(
                f"DELETE FROM {table} WHERE profile = ? AND symbol IN (SELECT unnest(?))",
                [profile, list(symbols)],
            )


def replace_labels(
    con: duckdb.DuckDBPyConnection,
    profile: str,
    symbols: Sequence[str],
    frame: pl.DataFrame,
    fingerprints: dict[str, str],
    params: str,
) -> None:
    """Swap in a profile's labels for `symbols` (rows and status together)."""
    counts = dict(frame.group_by("symbol").len().iter_rows())
    now = _utcnow()
    status = pl.DataFrame(
        {
            "symbol": list(symbols),
            "profile": [profile] * len(symbols),
            "prices_fingerprint": [fingerprints[s] for s in symbols],
            "params": [params] * len(symbols),
            "rows": [counts.get(s, 0) for s in symbols],
            "computed_at": [now] * len(symbols),
        },
        schema_overrides={"rows": pl.Int64},
    )
    with transaction(con):
        con.execute(
            "DELETE FROM labels WHERE profile = ? AND symbol IN (SELECT unnest(?))",
            [profile, list(symbols)],
        )
        _insert_from(con, frame, "INSERT INTO labels SELECT * FROM _new")
        _insert_from(con, status, "INSERT OR REPLACE INTO labels_status SELECT * FROM _new")


def record_training_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    profile: str,
    info: dict[str, Any],
    fingerprint: str,
    code_version: str,
    params: str,
    run_dir: str,
    metrics: dict[str, dict[str, float]],
) -> None:
    """One row in training_runs and every metric in model_metrics, together."""
    with transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO training_runs "
            "VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                _utcnow(),
                profile,
                info["train_start"],
                info["train_end"],
                info["test_start"],
                info["test_end"],
                info["n_train"],
                info["n_test"],
                fingerprint,
                code_version,
                params,
                run_dir,
            ],
        )
        con.execute("DELETE FROM model_metrics WHERE run_id = ?", [run_id])
        rows = [
            (run_id, model, metric, float(value))
            for model, values in metrics.items()
            for metric, value in values.items()
        ]
        _insert_from(
            con,
            pl.DataFrame(rows, schema=["run_id", "model", "metric", "value"], orient="row"),
            "INSERT INTO model_metrics SELECT * FROM _new",
        )


def replace_signals(con: duckdb.DuckDBPyConnection, run_id: str, frame: pl.DataFrame) -> None:
    """The run's latest signals, replacing any earlier ones of the same run."""
    with transaction(con):
        con.execute("DELETE FROM signals WHERE run_id = ?", [run_id])
        _insert_from(con, frame, "INSERT INTO signals SELECT * FROM _new")
