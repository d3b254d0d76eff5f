"""What the backtest derives from `prices`: `features`, `labels`, their status tables and
the `samples` view; how feature rows are stored (float32, NaN as NULL); how symbols are
grouped into batches.

Derived data is recomputed from prices, never edited: each table has a status table
recording the prices fingerprint (and catalog version or label parameters) it came from,
and a batch of symbols swaps rows and status together in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from stockml.store.connection import (
    get_setting,
    insert_frame,
    query_pl,
    set_setting,
    transaction,
    utcnow,
)
from stockml.store.schema import (
    CONTEXT_SWAP,
    SAMPLES_WITH_CONTEXT,
    context_ddl,
    context_scratch_from,
    features_columns,
    features_ddl,
    model_inputs_sql,
)

CONTEXT_VERSION_KEY = "context_version"
# Scratch tables of a context refresh (features/context_refresh.py): stage 1's per-symbol
# series, stage 2's cross-sections, stage 3's finished rows (renamed to context_features).
CONTEXT_SCRATCH = ("_context_stocks", "_context_sections", "_context_new")


def ensure_features_table(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    """Create `features` with the catalog's columns, or recreate it (features are derived
    data: recomputed from prices) when the catalog or the storage type changed."""
    existing = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'features' ORDER BY ordinal_position"
    ).fetchall()
    if [(name, kind) for name, kind in existing] == features_columns(columns):
        return
    ddl = features_ddl(columns)
    with transaction(con):
        con.execute("DROP VIEW IF EXISTS samples")
        con.execute("DROP VIEW IF EXISTS model_inputs")
        con.execute("DROP TABLE IF EXISTS features")
        con.execute("DELETE FROM features_status")
        con.execute(ddl)


def features_state(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """symbol -> (prices fingerprint, catalog version) the stored features came from."""
    rows = con.execute(
        "SELECT symbol, prices_fingerprint, catalog_version FROM features_status"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def read_vol_20(
    con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None
) -> pl.DataFrame:
    """symbol, date, vol_20 (DOUBLE) from `features` for `symbols` (None: all), sorted by
    symbol and date; empty when no features are stored. For pricing options at realised
    volatility (backtest.execution.read_bars)."""
    schema = {"symbol": pl.String, "date": pl.Date, "vol_20": pl.Float64}
    has = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'features' AND column_name = 'vol_20'"
    ).fetchone()[0]
    if not has:
        return pl.DataFrame(schema=schema)
    base = "SELECT symbol, date, CAST(vol_20 AS DOUBLE) AS vol_20 FROM features"
    if symbols is None:
        frame = query_pl(con, base + " ORDER BY symbol, date")
    else:
        frame = query_pl(
            con, base + " WHERE symbol IN (SELECT unnest(?)) ORDER BY symbol, date", [list(symbols)]
        )
    return frame.cast(schema)


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


def delete_features(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> None:
    with transaction(con):
        con.execute("DELETE FROM features WHERE symbol IN (SELECT unnest(?))", [list(symbols)])
        con.execute(
            "DELETE FROM features_status WHERE symbol IN (SELECT unnest(?))", [list(symbols)]
        )


def feature_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Computed features as stored (`schema.FEATURE_SQL_TYPE`): float32, NaN (warm-up) as
    NULL. Touches only float64 columns, so a frame already converted (off the writer's
    thread) costs nothing."""
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
            "computed_at": [utcnow()] * len(symbols),
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
            insert_frame(con, values, "INSERT INTO features SELECT * FROM _new")
            insert_frame(con, status, "INSERT OR REPLACE INTO features_status SELECT * FROM _new")
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
    now = utcnow()
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
        insert_frame(con, frame, "INSERT INTO labels SELECT * FROM _new")
        insert_frame(con, status, "INSERT OR REPLACE INTO labels_status SELECT * FROM _new")


def model_inputs(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    symbol: str | None = None,
    day=None,
) -> pl.DataFrame:
    """The model's input rows (the `model_inputs` view: catalog features, then context
    columns): symbol, date and `columns`, one row per symbol on its own newest day, or
    only `symbol`'s row of `day` when both are given (empty when it has none). NULL values
    (a feature's warm-up) come back as null."""
    if symbol is None:
        return query_pl(con, model_inputs_sql(columns, newest=True))
    return query_pl(con, model_inputs_sql(columns, newest=False), [symbol, day])


def ensure_context_table(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    """Create `context_features` (recreate it when its columns changed) and make the
    `model_inputs` and `samples` views join it. Needs the `features` table (the views
    select from it)."""
    existing = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'context_features' ORDER BY ordinal_position"
    ).fetchall()
    with transaction(con):
        if [r[0] for r in existing] != ["symbol", "date", *columns]:
            con.execute("DROP VIEW IF EXISTS samples")
            con.execute("DROP VIEW IF EXISTS model_inputs")
            con.execute("DROP TABLE IF EXISTS context_features")
            con.execute("DELETE FROM settings WHERE key = ?", [CONTEXT_VERSION_KEY])
            con.execute(context_ddl(columns))
        con.execute(SAMPLES_WITH_CONTEXT)


def context_state(con: duckdb.DuckDBPyConnection) -> str | None:
    """The version (inputs' digest) the stored context was computed from, if any."""
    return get_setting(con, CONTEXT_VERSION_KEY)


def reset_context_scratch(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> None:
    """Drop what an interrupted refresh left in the scratch tables and create the empty
    table the finished rows go to (`_context_new`, typed like `context_features`)."""
    with transaction(con):
        for table in CONTEXT_SCRATCH:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(context_ddl(columns, "_context_new"))


def append_context_scratch(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append `frame` to the scratch `table` (created with the frame's types the first
    time), types kept: scratch values stay float64 so the chunked refresh equals the
    in-memory `context_frame`; only `_context_new` stores float32 (NaN as NULL)."""
    if table not in CONTEXT_SCRATCH:
        raise ValueError(f"{table!r} is not a context scratch table")
    values = feature_rows(frame) if table == "_context_new" else frame
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()[0][0]
    sql = (
        f"INSERT INTO {table} SELECT * FROM _new" if exists else context_scratch_from(table, "_new")
    )
    insert_frame(con, values, sql)


def swap_context(con: duckdb.DuckDBPyConnection, version: str) -> None:
    """`_context_new` becomes `context_features` and `version` is recorded, in one
    transaction (the `samples` view binds the name when queried); the other scratch tables
    are dropped."""
    with transaction(con):
        for statement in CONTEXT_SWAP:
            con.execute(statement)
        set_setting(con, CONTEXT_VERSION_KEY, version)
        for table in CONTEXT_SCRATCH[:-1]:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def replace_context(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, version: str) -> None:
    """Swap the whole `context_features` table for `frame` (symbol, date, the context
    columns) and record `version`, in one transaction. Stored like features: float32,
    NaN as NULL."""
    values = feature_rows(frame)
    with transaction(con):
        con.execute("DELETE FROM context_features")
        insert_frame(con, values, "INSERT INTO context_features SELECT * FROM _new")
        set_setting(con, CONTEXT_VERSION_KEY, version)
