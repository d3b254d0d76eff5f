"""No surprise: mistakes a person makes are one line on stderr and exit 2, before any
work; read commands never create a store where a path was mistyped."""

from __future__ import annotations

import pytest

from tests.cli_support import assert_one_line_error, run_cli


@pytest.mark.parametrize("symbols", ["", " ", ",,"])
def test_an_empty_symbols_list_is_an_error_not_the_whole_universe(tmp_path, symbols):
    """`--symbols ''` (an unset shell variable) is refused: it used to fetch all 82."""
    db = tmp_path / "s.duckdb"
    proc = run_cli(
        "ingest", "--symbols", symbols, "--db", str(db), "--base-url", "http://127.0.0.1:9"
    )
    assert_one_line_error(proc, 2, "--symbols is empty")
    assert not db.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["signals"],
        ["sql", "SELECT 1"],
        ["train"],
        ["train", "--models", "logistic"],
        ["backtest"],
        ["features"],
        ["serve"],
    ],
    ids=lambda a: " ".join(a),
)
def test_a_missing_store_is_one_line_and_is_not_created(tmp_path, args):
    """A read (or refresh) of a store that is not there: exit 2, one line naming it; no
    empty store (nor its folder) appears."""
    db = tmp_path / "typo" / "stockml.duckdb"
    proc = run_cli(*args, "--db", str(db))
    assert_one_line_error(proc, 2, f"no store at {db}")
    assert not db.exists() and not db.parent.exists()


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "the SQL text is empty"),
        ("   \n ", "the SQL text is empty"),
        ("-- only a comment", "has no statement"),
        ("SELEC 1", "SQL error: Parser Error"),
        ("SELECT * FROM no_such_table", "SQL error: Catalog Error"),
        ("DELETE FROM prices", "SQL error:"),
    ],
    ids=["empty", "blank", "comment", "typo", "table", "write"],
)
def test_sql_mistakes_are_one_line(quick_demo_store, query, fragment):
    proc = run_cli("sql", query, "--db", str(quick_demo_store))
    assert_one_line_error(proc, 2, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sql", "SELECT 1", "--format", "xml"], "--format must be one of table, csv, json"),
        (["sql", "SELECT 1", "--out", "x.txt"], "--out must end in .csv, .json or .parquet"),
        (["signals", "--format", "html"], "--format must be one of"),
        (["signals", "--out", "x.parquet"], "--out must end in .csv or .json"),
    ],
)
def test_bad_output_flags_are_one_line(quick_demo_store, args, fragment):
    proc = run_cli(*args, "--db", str(quick_demo_store))
    assert_one_line_error(proc, 2, fragment)
