"""Writers on a damaged store file say so in one line (issue 27, fault 7).

DuckDB catches every damaged block it reads (a truncated file, a block whose checksum
does not match), so no query answers from it; but the commands let its exception through
as a 40-line traceback. Here a store of real prices is damaged both ways, at a place the
file still opens with (the damage is met when the prices are read), and `stockml
backtest` and `train` each end in one line naming it, exit 2. (`stockml ingest` fails
each symbol it cannot write with the reason, exit 4: its own rule for a write.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from stockml import store
from tests.conftest import insert_prices

ROOT = Path(__file__).resolve().parent.parent
HEADER = 3 * 4096  # DuckDB's file header; 256 KiB blocks follow
BLOCK = 256 * 1024

pytestmark = pytest.mark.slow


SYMBOLS = 40


@pytest.fixture(scope="module")
def prices_store(sp500_bars, tmp_path_factory) -> Path:
    """40 real stocks' prices, 2012-2021: a few MB, several data blocks."""
    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:SYMBOLS]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2012, 1, 1)))
    db = tmp_path_factory.mktemp("damage") / "s.duckdb"
    con = store.connect(db)
    insert_prices(con, bars)
    store.close(con)
    return db


def reads_fail_but_opens(db: Path) -> bool:
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return False
    try:
        con.execute("SELECT sum(close), sum(volume) FROM prices").fetchall()
    except duckdb.Error:
        return True
    finally:
        con.close()
    return False


def truncated(source: Path, target: Path) -> Path:
    """`source` cut so that it still opens but its prices cannot all be read."""
    data = source.read_bytes()
    for keep in range(len(data) // 2, len(data), BLOCK // 4):
        target.write_bytes(data[:keep])
        if reads_fail_but_opens(target):
            return target
    pytest.fail("no truncation both opens and fails on read")


def bad_checksum(source: Path, target: Path) -> Path:
    """`source` with bytes changed inside one data block: its checksum no longer matches."""
    data = source.read_bytes()
    for start in range(HEADER, len(data), BLOCK):
        damaged = bytearray(data)
        damaged[start + 5000 : start + 5032] = b"\xde\xad\xbe\xef" * 8
        target.write_bytes(bytes(damaged))
        if reads_fail_but_opens(target):
            return target
    pytest.fail("no damaged block both opens and fails on read")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args, "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("damage", [truncated, bad_checksum])
@pytest.mark.parametrize(
    "command",
    [
        ["backtest"],
        ["train", "--models", "logistic", "--windows", "1"],
    ],
    ids=["backtest", "train"],
)
def test_a_writer_on_a_damaged_store_says_so_in_one_line(prices_store, tmp_path, damage, command):
    """One line naming the damage and what to do, exit 2, no traceback."""
    db = damage(prices_store, tmp_path / "s.duckdb")
    done = run(*command, "--db", str(db))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[0].startswith("stockml: error: the store file is damaged (")
    assert "restore a copy of the store" in lines[0]


def test_the_undamaged_store_reads(prices_store, tmp_path):
    """The control: the same store, undamaged, reads whole."""
    copy = tmp_path / "s.duckdb"
    shutil.copy(prices_store, copy)
    assert not reads_fail_but_opens(copy)
