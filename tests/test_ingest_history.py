"""History by default and a sector for every stored symbol (issue 23, the ingest side):
the real `stockml ingest` against the fixture server on the real data set, into a real
DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ingest.plan import DEFAULT_START, EARLIEST_START, fetch_start_for, local_midnight
from ingest.sectors import plan_sectors, read_sector_file
from ingest.universe import read_universe
from stockml.errors import InputError
from tests.ingest_support import load_market, serving, table

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", "ingest", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def test_a_default_ingest_fetches_from_2000_and_says_which_symbols_have_no_sector(
    sp500_parquet, tmp_path
):
    """No --start: every symbol is asked from 2000-01-01 less the warm-up and stored from
    the data's first day (1999-11-01); sectors come from the built-in universe (AAPL), the
    shipped S&P 500 list (ABC), the universe file's column (XMPL), and the one symbol with
    none (NOSEC) is named in one line of the summary and in the log."""
    base = load_market(sp500_parquet, ["AAPL", "ABC", "KO", "PFE"])
    base.series["XMPL"] = base.series.pop("KO")
    base.series["NOSEC"] = base.series.pop("PFE")
    universe = tmp_path / "u.csv"
    universe.write_text("symbol,name,sector\nAAPL,,\nABC,,\nXMPL,Example Co,energy\nNOSEC,,\n")
    db = tmp_path / "s.duckdb"
    with serving(base) as srv:
        proc = run_cli(
            "--universe", str(universe), "--end", "2021-04-21", "--db", str(db),
            "--base-url", srv.base_url, "--rate", "100",
        )  # fmt: skip
        period1 = {r.symbol for r in srv.server.log}
    assert proc.returncode == 0, proc.stderr
    assert period1 == {"AAPL", "ABC", "XMPL", "NOSEC"}
    status = table(db, "SELECT symbol, first_date, fetched_from FROM ingest_status ORDER BY 1")
    assert set(status["fetched_from"]) == {fetch_start_for(DEFAULT_START)}
    assert set(status["first_date"]) == {date(1999, 11, 1)}
    sectors = dict(table(db, "SELECT symbol, sector FROM symbols").rows())
    assert sectors["AAPL"] == "Information Technology"
    assert sectors["ABC"] == "Health Care"
    assert sectors["XMPL"] == "Energy"
    assert "NOSEC" not in sectors
    output = (proc.stdout + proc.stderr).splitlines()
    said = [line for line in output if "no GICS sector" in line]
    assert len(said) == 1 and "for 1 symbols (NOSEC)" in said[0], output
    events = [json.loads(line) for line in db.with_suffix(".log").read_text().splitlines()]
    assert [e["listed"] for e in events if e["event"] == "no_sector"] == [["NOSEC"]]


def test_start_narrows_and_max_asks_for_everything(sp500_parquet, tmp_path):
    """--start 2019-01-02 asks from its warm-up; --start max asks from 1900 (period1
    negative, as yfinance's "max"), which the server answers from the first trade."""
    base = load_market(sp500_parquet, ["ADBE"])
    with serving(base) as srv:
        common = ["--symbols", "ADBE", "--end", "2021-04-21", "--base-url", srv.base_url]
        narrow = run_cli(*common, "--start", "2019-01-02", "--db", str(tmp_path / "a.duckdb"))
        wide = run_cli(*common, "--start", "max", "--db", str(tmp_path / "b.duckdb"))
        asked = [r for r in srv.server.log]
    assert narrow.returncode == 0 and wide.returncode == 0, (narrow.stderr, wide.stderr)
    assert len(asked) == 2
    first = table(tmp_path / "a.duckdb", "SELECT min(date) AS d FROM prices")["d"][0]
    assert fetch_start_for(date(2019, 1, 2)) <= first < date(2017, 10, 20)
    everything = table(tmp_path / "b.duckdb", "SELECT fetched_from, first_date FROM ingest_status")
    assert everything.rows() == [(EARLIEST_START, date(1999, 11, 1))]
    assert local_midnight(EARLIEST_START) < -2_208_900_000  # 1900, before the epoch


def test_a_sectors_file_wins_over_every_other_source(tmp_path):
    """--sectors FILE first, then the universe file's column, the built-ins, the shipped
    list; a file without a sector column is refused in one line."""
    given = tmp_path / "sectors.tsv"
    given.write_text("AAPL\tUtilities\n")
    universe = tmp_path / "u.csv"
    universe.write_text("symbol,sector\nAAPL,Energy\nZZZZ,\n")
    chosen = read_universe(str(universe))
    plan = plan_sectors(chosen.symbols, read_sector_file(given), chosen.listings)
    rows = {s: sector for s, _, sector in plan.rows}
    assert rows["AAPL"] == "Utilities" and plan.unknown == ["ZZZZ"]
    bare = tmp_path / "bare.txt"
    bare.write_text("AAPL\n")
    with pytest.raises(InputError, match="gives no sector"):
        read_sector_file(bare)
