"""The reads of the signals, runs and ingest pages, as SQL with parameters: with
`symbol_queries` (the symbol page) and `trading` (what a run says to trade, its equity
curves), the only modules of `stockml.web` that know table and column names (see
`stockml/store/schema.py`).

Each function takes a DuckDB cursor (on the server's read-only snapshot) and returns plain
Python values: lists of row dicts, or None for "no such symbol / run". No function builds
SQL from user text: filter values are parameters and a sort column is looked up in a fixed
table. `window` is an SQL keyword, hence the quotes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb

from stockml.freshness import STALE_AFTER, stale_reason
from stockml.store.schema import SIGNAL_CONTRACT_COLUMNS

Row = dict[str, Any]

# Sortable columns of the signals table: the only text that enters ORDER BY.
SORT_COLUMNS = {
    "signal": "signal_rank",
    "symbol": "symbol",
    "name": "name",
    "sector": "sector",
    "profile": "profile",
    "edge": "edge",
    "probability": "probability",
    "p_win": "p_win",
    "p_loss": "p_loss",
    "threshold": "threshold",
    "last_close": "last_close",
    "date": "date",
    "act_on": "act_on",
    "expiry": "expiry",
    "premium": "premium",
}
SIGNALS = ("BUY CALL", "BUY PUT", "HOLD")
# What a BUY says to do (`signals` columns since issue 24; NULL on HOLD rows, absent from a
# store scored before them, where they read as None).
_NEWEST_SIGNALS = """
WITH newest AS (
    SELECT s.profile, s.run_id
    FROM signals s JOIN training_runs t USING (run_id)
    GROUP BY s.profile, s.run_id
    QUALIFY row_number() OVER (PARTITION BY s.profile ORDER BY max(t.created_at) DESC) = 1
), own_day AS (
    SELECT s.* FROM signals s JOIN newest n ON s.run_id = n.run_id AND s.profile = n.profile
    QUALIFY row_number() OVER (PARTITION BY s.run_id, s.symbol ORDER BY s.date DESC) = 1
), shown AS (
    SELECT s.*, y.name, y.sector,
           CASE s.signal WHEN 'BUY CALL' THEN s.p_win WHEN 'BUY PUT' THEN s.p_loss
                ELSE greatest(s.p_win, s.p_loss) END AS probability,
           CASE s.signal WHEN 'BUY CALL' THEN s.p_win - s.p_loss
                WHEN 'BUY PUT' THEN s.p_loss - s.p_win
                ELSE abs(s.p_win - s.p_loss) END AS edge,
           CASE s.signal WHEN 'BUY CALL' THEN 0 WHEN 'BUY PUT' THEN 1 ELSE 2 END AS signal_rank
    FROM own_day s
    LEFT JOIN symbols y USING (symbol)
    WHERE (?::VARCHAR IS NULL OR s.signal = ?)
      AND (?::VARCHAR IS NULL OR y.sector = ?)
      AND (?::VARCHAR IS NULL OR s.profile = ?)
      AND (?::VARCHAR IS NULL OR s.symbol = ?)
), closes AS (
    SELECT symbol, arg_max(close, date) AS last_close, max(date) AS close_date
    FROM prices WHERE symbol IN (SELECT symbol FROM shown) GROUP BY symbol
)
SELECT shown.*, c.last_close, c.close_date FROM shown LEFT JOIN closes c USING (symbol)
"""


def rows(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[Row]:
    """A query's rows as dicts keyed by column name."""
    result = cur.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def has_table(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(found and found[0])


def latest_signals(
    cur: duckdb.DuckDBPyConnection,
    signal: str | None = None,
    sector: str | None = None,
    profile: str | None = None,
    symbol: str | None = None,
    sort: str = "signal",
    descending: bool = True,
    today: date | None = None,
) -> list[Row]:
    """The newest signals of each profile: of the newest run of the profile that stored
    signals, every symbol's newest signal, each with its own date (a crypto symbol's
    Sunday or a stock ingested a session further hides no other), with name, sector, last
    close and `stale` (`stale_reason`, None when current); filtered on exact values (None:
    any) and sorted by one of SORT_COLUMNS (KeyError otherwise), then symbol.

    `threshold` is None for HOLD: the rule's threshold on the side's `edge`, which is
    p_win - p_loss for a call, p_loss - p_win for a put and |p_win - p_loss| for HOLD;
    `probability` is p_win for a call, p_loss for a put and the larger of the two for HOLD.
    Sorted by "signal", descending means what to do first: BUY CALL, BUY PUT, then HOLD,
    each by edge, largest first. The contract columns (SIGNAL_CONTRACT_COLUMNS) are None
    where the store has none."""
    key = SORT_COLUMNS[sort]
    first, then = ("ASC", "DESC") if descending else ("DESC", "ASC")
    if sort == "signal":
        by = f"signal_rank {first}, edge {then} NULLS LAST"
    else:
        by = f"{key} {'DESC' if descending else 'ASC'} NULLS LAST"
    params = [signal, signal, sector, sector, profile, profile, symbol, symbol]
    out = rows(cur, f"{_NEWEST_SIGNALS} ORDER BY {by}, symbol, profile", params)
    closed = _last_closed_day(today)
    for row in out:
        if row["threshold"] is not None and row["threshold"] != row["threshold"]:
            row["threshold"] = None  # HOLD stores NaN
        for name in SIGNAL_CONTRACT_COLUMNS:
            row.setdefault(name, None)
        row["stale"] = stale_reason(row["date"], row["close_date"], closed)
    return out


def _last_closed_day(today: date | None) -> date:
    from ingest.plan import last_closed_day

    return last_closed_day(today or date.today())


def pick_signals(
    rows: list[Row],
    signal: str | None = None,
    sector: str | None = None,
    profile: str | None = None,
    sort: str = "signal",
    descending: bool = True,
) -> list[Row]:
    """`latest_signals` rows filtered and sorted in Python as `latest_signals` would in
    SQL (missing values last, then symbol and profile): for rows kept in a snapshot's memo."""
    column = SORT_COLUMNS[sort]
    kept = [
        r
        for r in rows
        if (signal is None or r["signal"] == signal)
        and (sector is None or r["sector"] == sector)
        and (profile is None or r["profile"] == profile)
    ]
    kept.sort(key=lambda r: (r["symbol"], r["profile"] or ""))
    if sort == "signal":  # what to do first: BUY CALL, BUY PUT, HOLD; each by edge
        present = [r for r in kept if r["edge"] is not None]
        present.sort(key=lambda r: r["edge"], reverse=descending)
        ordered = present + [r for r in kept if r["edge"] is None]
        ordered.sort(key=lambda r: r["signal_rank"], reverse=not descending)
        return ordered
    present = [r for r in kept if r[column] is not None]
    missing = [r for r in kept if r[column] is None]
    present.sort(key=lambda r: r[column], reverse=descending)
    return present + missing


def filter_choices(cur: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The values the signals page offers in its filters: sectors and profiles present."""
    sectors = cur.execute(
        "SELECT DISTINCT y.sector FROM signals s JOIN symbols y USING (symbol) "
        "WHERE y.sector IS NOT NULL ORDER BY 1"
    ).fetchall()
    profiles = cur.execute(
        "SELECT DISTINCT profile FROM signals WHERE profile IS NOT NULL ORDER BY 1"
    ).fetchall()
    return {
        "signal": list(SIGNALS),
        "sector": [r[0] for r in sectors],
        "profile": [r[0] for r in profiles],
    }


def freshness(cur: duckdb.DuckDBPyConnection, today: date | None = None) -> Row:
    """Newest bar, newest ingest, newest training run and newest signal day, with the
    warnings a user should read before trusting today's signals."""
    from ingest.plan import last_closed_day

    last_bar, last_ingest, failed = cur.execute(
        "SELECT (SELECT max(date) FROM prices), (SELECT max(updated_at) FROM ingest_status), "
        "(SELECT count(*) FROM ingest_status WHERE status = 'failed')"
    ).fetchone()
    (inactive,) = cur.execute(
        "SELECT count(*) FROM ingest_status WHERE status = 'inactive'"
    ).fetchone()
    last_run, last_signal = cur.execute(
        "SELECT (SELECT max(created_at) FROM training_runs), (SELECT max(date) FROM signals)"
    ).fetchone()
    warnings = []
    closed = last_closed_day(today or date.today())
    if last_bar is None:
        warnings.append("the store holds no prices: run `stockml ingest`")
    elif closed - last_bar > STALE_AFTER:
        warnings.append(
            f"stale data: the newest bar is {last_bar}, the last closed session {closed}; "
            "run `stockml ingest`"
        )
    if last_run is None:
        warnings.append("no training run: run `stockml train` then `stockml signals`")
    elif last_signal is None:
        warnings.append("no signals stored: run `stockml signals`")
    elif last_bar is not None and last_signal < last_bar:
        warnings.append(
            f"signals are for {last_signal}, older than the newest bar {last_bar}: "
            "run `stockml signals` (and `stockml train` if the model is old)"
        )
    if failed:
        warnings.append(f"{failed} symbol(s) failed at the last ingest (see Ingest)")
    if inactive:
        warnings.append(
            f"{inactive} symbol(s) inactive after repeated 404s from Yahoo: not scored (see Ingest)"
        )
    return {
        "last_bar": last_bar,
        "last_ingest": last_ingest,
        "last_run": last_run,
        "last_signal": last_signal,
        "warnings": warnings,
    }


# Columns `signal_trades` gained with placed trades (issue 24): None on an older store's rows.
PLACED_COLUMNS = ("entry_date", "entry_price", "costs")


def placed_columns(found: list[Row]) -> list[Row]:
    for row in found:
        for name in PLACED_COLUMNS:
            row.setdefault(name, None)
    return found


def training_runs(cur: duckdb.DuckDBPyConnection) -> list[Row]:
    """Every training run, newest first, with the stack's pooled headline metrics."""
    return rows(
        cur,
        "SELECT r.run_id, r.created_at, r.profile, r.status, r.test_start, r.test_end, "
        "r.n_train, r.n_test, "
        "max(m.value) FILTER (WHERE m.metric = 'accuracy') AS accuracy, "
        "max(m.value) FILTER (WHERE m.metric = 'log_loss') AS log_loss, "
        "max(m.value) FILTER (WHERE m.metric = 'call_precision') AS call_precision, "
        "max(m.value) FILTER (WHERE m.metric = 'put_precision') AS put_precision "
        "FROM training_runs r LEFT JOIN model_metrics m "
        "ON m.run_id = r.run_id AND m.model = 'stack' AND m.\"window\" = 'pooled' "
        "GROUP BY ALL ORDER BY r.created_at DESC",
    )


def training_run(cur: duckdb.DuckDBPyConnection, run_id: str) -> Row | None:
    found = rows(cur, "SELECT * FROM training_runs WHERE run_id = ?", [run_id])
    return found[0] if found else None


def run_metrics(cur: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, dict]]:
    """model_metrics of a run as {window: {model: {metric: value}}} ('1'..'K', 'pooled')."""
    out: dict[str, dict[str, dict]] = {}
    for window, model, metric, value in cur.execute(
        'SELECT "window", model, metric, value FROM model_metrics WHERE run_id = ? '
        'ORDER BY "window", model, metric',
        [run_id],
    ).fetchall():
        out.setdefault(window, {}).setdefault(model, {})[metric] = value
    return out


def run_trades(cur: duckdb.DuckDBPyConnection, run_id: str) -> list[Row]:
    """signal_trades of a run (every column but run_id), by signal day."""
    return placed_columns(
        rows(
            cur,
            "SELECT * EXCLUDE (run_id) FROM signal_trades WHERE run_id = ? ORDER BY date, symbol",
            [run_id],
        )
    )


def ingest_status(cur: duckdb.DuckDBPyConnection) -> list[Row]:
    """Every symbol's ingest status, failures first, then by symbol."""
    return rows(
        cur,
        "SELECT i.symbol, y.name, i.status, i.error, i.attempts, i.rows, i.first_date, "
        "i.last_date, i.updated_at, i.transport, i.dropped_null, i.dropped_invalid, "
        "(SELECT count(*) FROM price_flags f WHERE f.symbol = i.symbol) AS flags "
        "FROM ingest_status i LEFT JOIN symbols y USING (symbol) "
        "ORDER BY i.status = 'ok', i.symbol",
    )


def as_json(value: Any) -> Any:
    """A row value as JSON: dates as ISO text, NaN as null."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value
