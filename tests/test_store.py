"""The store package: one home for the DDL, typed records that match their tables."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import date
from pathlib import Path

import polars as pl

from ingest.yahoo import BAR_SCHEMA
from stockml import store

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "stockml" / "store" / "schema.py"


def columns(con, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def bars(symbol: str, days: list[date]) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": days,
            "open": [10.0] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [10.5] * n,
            "adjclose": [10.5] * n,
            "volume": [1000] * n,
        },
        schema=BAR_SCHEMA,
    )


def test_ddl_lives_only_in_the_schema_module():
    """No project module outside stockml/store/schema.py creates or alters a table or view."""
    ddl = re.compile(r"\b(CREATE\s+(TABLE|VIEW)|ALTER\s+TABLE)\b", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("stockml", "ingest", "features", "backtest", "training")
        for path in (ROOT / package).rglob("*.py")
        if path != SCHEMA and ddl.search(path.read_text())
    ]
    assert offenders == []


def test_status_record_fields_are_the_ingest_status_columns(db_path):
    """IngestStatusRecord is written by name, so its fields must be the table's columns."""
    con = store.connect(db_path)
    try:
        assert [f.name for f in fields(store.IngestStatusRecord)] == columns(con, "ingest_status")
    finally:
        con.close()


def test_failed_refresh_keeps_the_stored_rows_and_their_coverage(db_path):
    """A failure after a good fetch records the reason without shrinking what is stored."""
    days = [date(2024, 1, 2), date(2024, 1, 3)]
    con = store.connect(db_path)
    try:
        ok = store.SymbolWrite(
            "AAA",
            attempts=2,
            transport="aiohttp",
            bars=bars("AAA", days),
            fetched_from=date(2023, 1, 1),
            fetched_through=days[-1],
            dropped_null=1,
            dropped_invalid=0,
            first_write=True,
        )
        assert store.write_batch(con, [ok]) == {"AAA": 2}
        failed = store.SymbolWrite("AAA", attempts=4, transport="curl", error="HTTP 500")
        assert store.write_batch(con, [failed]) == {"AAA": 2}
        state = store.ingest_state(con)["AAA"]
        assert state == store.IngestState(
            status="failed",
            fetched_from=date(2023, 1, 1),
            fetched_through=days[-1],
            last_date=days[-1],
            rows=2,
        )
        row = con.execute(
            "SELECT attempts, error, transport, dropped_null FROM ingest_status"
        ).fetchone()
        assert row == (4, "HTTP 500", "curl", None)
    finally:
        con.close()


def test_signal_trades_gain_entry_and_costs_in_older_stores(db_path):
    """A store whose signal_trades predates entry_date / entry_price / costs gets them on
    connect (NULL for its rows), and a writer without them still records a run."""
    import duckdb

    con = store.connect(db_path)
    con.close()
    raw = duckdb.connect(str(db_path))
    for column in ("entry_date", "entry_price", "costs"):
        raw.execute(f"ALTER TABLE signal_trades DROP COLUMN {column}")
    raw.execute(
        "INSERT INTO signal_trades VALUES ('old', '1', 'AAA', DATE '2020-01-02', 'BUY CALL', "
        "DATE '2020-01-10', 6, 1, 0.1, 0.5)"
    )
    raw.close()
    con = store.connect(db_path)
    try:
        assert columns(con, "signal_trades")[-3:] == ["entry_date", "entry_price", "costs"]
        assert con.execute(
            "SELECT symbol, entry_date, costs FROM signal_trades WHERE run_id = 'old'"
        ).fetchall() == [("AAA", None, None)]
        trades = pl.DataFrame(
            {
                "run_id": ["new"],
                "window": ["1"],
                "symbol": ["BBB"],
                "date": [date(2021, 3, 1)],
                "signal": ["BUY PUT"],
                "exit_date": [date(2021, 3, 5)],
                "days_held": [4],
                "outcome": [-1],
                "stock_return": [0.03],
                "option_return": [0.4],
                "entry_date": [date(2021, 3, 2)],
                "costs": [0.061],
            }
        )
        info = dict.fromkeys(("train_start", "train_end", "test_start", "test_end"))
        info |= {"n_train": 1, "n_test": 1}
        store.record_training_run(con, "new", "swing", info, "f", "c", "{}", "d", [], trades)
        row = con.execute(
            "SELECT entry_date, entry_price, costs FROM signal_trades WHERE run_id = 'new'"
        ).fetchone()
        assert row == (date(2021, 3, 2), None, 0.061)
    finally:
        con.close()
