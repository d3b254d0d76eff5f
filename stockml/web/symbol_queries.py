"""The symbol page's reads, as SQL with parameters (the signals, runs and ingest reads are
`queries`): a symbol's listing, bars and walk-forward trades, the features of a day across
stocks with each one's percentile, and the stored explanation of a signal.

Same contract as `queries`: a DuckDB cursor on the server's snapshot in, plain values out,
user text only as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np

from stockml.web.queries import Row, has_table, placed_columns, rows


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
    """The walk-forward trades of `symbol` in the given runs (every `signal_trades`
    column, with the run's profile), by signal day."""
    if not run_ids:
        return []
    return placed_columns(
        rows(
            cur,
            "SELECT t.*, r.profile FROM signal_trades t JOIN training_runs r USING (run_id) "
            "WHERE t.symbol = ? AND list_contains(?, t.run_id) ORDER BY t.date, r.profile",
            [symbol, run_ids],
        )
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
