"""Every read the web pages make, as SQL with parameters: the only module of `stockml.web`
that knows table and column names (see `stockml/store/schema.py`).

Each function takes a DuckDB cursor (on the server's read-only snapshot) and returns plain
Python values: lists of row dicts, or None for "no such symbol / run". No function builds
SQL from user text: filter values are parameters and a sort column is looked up in a fixed
table. `window` is an SQL keyword, hence the quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

Row = dict[str, Any]

# Sortable columns of the signals table: the only text that enters ORDER BY.
SORT_COLUMNS = {
    "symbol": "symbol",
    "name": "name",
    "sector": "sector",
    "profile": "profile",
    "signal": "signal",
    "probability": "probability",
    "p_win": "p_win",
    "p_loss": "p_loss",
    "threshold": "threshold",
    "last_close": "last_close",
    "date": "date",
}
SIGNALS = ("BUY CALL", "BUY PUT", "HOLD")
# A store is stale when its newest bar is this many calendar days older than the last
# closed session (a long weekend is 4 days: Friday to Tuesday).
STALE_AFTER = timedelta(days=4)

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
    SELECT s.run_id, s.profile, s.symbol, y.name, y.sector, s.date, s.signal,
           s.p_win, s.p_timeout, s.p_loss, s.threshold,
           CASE s.signal WHEN 'BUY CALL' THEN s.p_win WHEN 'BUY PUT' THEN s.p_loss
                ELSE greatest(s.p_win, s.p_loss) END AS probability
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
    sort: str = "probability",
    descending: bool = True,
    today: date | None = None,
) -> list[Row]:
    """The newest signals of each profile: of the newest run of the profile that stored
    signals, every symbol's newest signal, each with its own date (a crypto symbol's
    Sunday or a stock ingested a session further hides no other), with name, sector, last
    close and `stale` (`stale_reason`, None when current); filtered on exact values (None:
    any) and sorted by one of SORT_COLUMNS (KeyError otherwise), then symbol.
    `threshold` is None for HOLD; `probability` is p_win for a call, p_loss for a put and
    the larger of the two for HOLD."""
    column = SORT_COLUMNS[sort]
    order = f" ORDER BY {column} {'DESC' if descending else 'ASC'} NULLS LAST, symbol, profile"
    params = [signal, signal, sector, sector, profile, profile, symbol, symbol]
    out = rows(cur, _NEWEST_SIGNALS + order, params)
    closed = _last_closed_day(today)
    for row in out:
        if row["threshold"] is not None and row["threshold"] != row["threshold"]:
            row["threshold"] = None  # HOLD stores NaN
        row["stale"] = stale_reason(row["date"], row["close_date"], closed)
    return out


def _last_closed_day(today: date | None) -> date:
    from ingest.plan import last_closed_day

    return last_closed_day(today or date.today())


def stale_reason(day: date, close_date: date | None, closed: date) -> str | None:
    """Why a symbol's newest signal (of `day`) should not be traded as today's, else None:
    its prices go on past it (`close_date`, its newest bar: score again), or it is more
    than STALE_AFTER older than the last closed session `closed` (no newer bar: an ingest
    that fails for it, a delisted symbol)."""
    if close_date is not None and close_date > day:
        return f"bars up to {close_date} are stored: score again with `stockml signals`"
    if closed - day > STALE_AFTER:
        return f"no bar since {day}: the last closed session is {closed}"
    return None


def pick_signals(
    rows: list[Row],
    signal: str | None = None,
    sector: str | None = None,
    profile: str | None = None,
    sort: str = "probability",
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
        "(SELECT count(*) FROM ingest_status WHERE status <> 'ok')"
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
    return {
        "last_bar": last_bar,
        "last_ingest": last_ingest,
        "last_run": last_run,
        "last_signal": last_signal,
        "warnings": warnings,
    }


def symbol_overview(cur: duckdb.DuckDBPyConnection, symbol: str) -> Row | None:
    """Name, sector and bar count of a symbol the store knows (prices or signals), else None."""
    found = cur.execute(
        "SELECT (SELECT count(*) FROM prices WHERE symbol = ?), "
        "(SELECT count(*) FROM signals WHERE symbol = ?)",
        [symbol, symbol],
    ).fetchone()
    if not found or (found[0] == 0 and found[1] == 0):
        return None
    listing = cur.execute("SELECT name, sector FROM symbols WHERE symbol = ?", [symbol]).fetchone()
    name, sector = listing if listing else (None, None)
    return {"symbol": symbol, "name": name, "sector": sector, "bars": found[0]}


def bars(cur: duckdb.DuckDBPyConnection, symbol: str) -> dict[str, np.ndarray]:
    """The symbol's stored daily bars, oldest first: date (datetime64[D]), open, high, low,
    close, adjclose (float64) and volume (float64, NaN when unknown)."""
    frame = cur.execute(
        "SELECT date, open, high, low, close, adjclose, volume::DOUBLE AS volume "
        "FROM prices WHERE symbol = ? ORDER BY date",
        [symbol],
    ).fetchnumpy()
    return {k: np.asarray(v) for k, v in frame.items()}


def past_trades(cur: duckdb.DuckDBPyConnection, symbol: str, run_ids: list[str]) -> list[Row]:
    """The walk-forward signals of `symbol` in the given runs, with outcome and returns."""
    if not run_ids:
        return []
    return rows(
        cur,
        'SELECT t.run_id, r.profile, t."window", t.date, t.signal, t.exit_date, t.days_held, '
        "t.outcome, t.stock_return, t.option_return FROM signal_trades t "
        "JOIN training_runs r USING (run_id) WHERE t.symbol = ? AND list_contains(?, t.run_id) "
        "ORDER BY t.date, r.profile",
        [symbol, run_ids],
    )


@dataclass(frozen=True)
class FeatureDay:
    """Every stock's feature row of one day: `values` (n_symbols, len(columns)) float64,
    NaN where missing, rows in `symbols` order."""

    day: date
    columns: list[str]
    symbols: dict[str, int]  # symbol -> row
    values: np.ndarray


def newest_feature_day(cur: duckdb.DuckDBPyConnection, symbol: str) -> date | None:
    """The symbol's newest day in `features`; None without one (or without the table)."""
    if not has_table(cur, "features"):
        return None
    found = cur.execute("SELECT max(date) FROM features WHERE symbol = ?", [symbol]).fetchone()
    return found[0] if found else None


def feature_day(cur: duckdb.DuckDBPyConnection, day: date, columns: list[str]) -> FeatureDay | None:
    """Every stock's row of `day` in the columns of `columns` the table has; None without a
    `features` table. One query per day: the symbol pages of a snapshot share it."""
    if not has_table(cur, "features"):
        return None
    present = {r[0] for r in cur.execute("DESCRIBE features").fetchall()}
    columns = [c for c in columns if c in present]
    select = ", ".join(f'"{c}"' for c in columns)  # catalog names: plain identifiers
    got = cur.execute(f"SELECT symbol, {select} FROM features WHERE date = ?", [day]).fetchall()
    values = np.array([r[1:] for r in got], dtype=np.float64).reshape(len(got), len(columns))
    return FeatureDay(day, columns, {r[0]: i for i, r in enumerate(got)}, values)


def feature_percentiles(
    table: FeatureDay | None, symbol: str
) -> tuple[date, list[str], np.ndarray, np.ndarray] | None:
    """The symbol's row of the day in `table` and, per feature, the percentile (0-100) of
    its value among every stock's row of that day (NaN when the value is missing):
    (day, columns, values, percentiles). None when the symbol has no row that day."""
    if table is None or symbol not in table.symbols:
        return None
    own = table.values[table.symbols[symbol]]
    finite = np.isfinite(table.values)
    below = np.sum((table.values <= own) & finite, axis=0)
    count = np.sum(finite, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(np.isfinite(own) & (count > 0), 100.0 * below / count, np.nan)
    return table.day, table.columns, own, pct


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
    """signal_trades of a run, by entry day."""
    return rows(
        cur,
        'SELECT "window", symbol, date, signal, exit_date, days_held, outcome, stock_return, '
        "option_return FROM signal_trades WHERE run_id = ? ORDER BY date, symbol",
        [run_id],
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


def explanation(cur: duckdb.DuckDBPyConnection, run_id: str, symbol: str, day: date) -> Row | None:
    """The stored explanation of one signal: {models, note, win, loss}, win and loss the
    ranked contributions (feature, value, reference, contribution; NaN for a missing
    value); None when `stockml signals` stored none (runs scored by earlier versions)."""
    if not has_table(cur, "signal_explanations"):
        return None
    head = cur.execute(
        "SELECT models, note FROM signal_explanations WHERE run_id = ? AND symbol = ? AND date = ?",
        [run_id, symbol, day],
    ).fetchone()
    if head is None:
        return None
    found: Row = {"models": list(head[0]), "note": head[1], "win": [], "loss": []}
    for outcome, feature, value, reference, contribution in cur.execute(
        "SELECT outcome, feature, value, reference, contribution FROM signal_contributions "
        "WHERE run_id = ? AND symbol = ? AND date = ? ORDER BY outcome, rank",
        [run_id, symbol, day],
    ).fetchall():
        found[outcome].append(
            {
                "feature": feature,
                "value": float("nan") if value is None else value,
                "reference": float("nan") if reference is None else reference,
                "contribution": contribution,
            }
        )
    return found
