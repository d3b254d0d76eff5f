"""A command says ok only when what it wrote is in the store file (issue 27, fault 1).

DuckDB keeps committed writes in `<store>.wal` until a checkpoint folds them into the file,
and its close swallows a checkpoint that fails. On a small disk or under a file-size limit
`stockml ingest` said "82 ok" and exited 0 while the `.duckdb` file held no table: a copy
of the store (what a backup is) had lost everything. Here the real `stockml ingest` of the
82 simulated stocks runs against the fixture server under a file-size limit and on an
8 MiB tmpfs: it either ends ok with every row in the store file alone, or fails in one
line saying what to do, and the rerun with room completes with every row in the file.
And `stockml train` on a full disk (fault 7) ends in one line; the rerun with room records
the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from stockml import store
from tests.fs_support import file_size_limit, fill, tmpfs

ROOT = Path(__file__).resolve().parent.parent
START, END = "2023-01-02", "2024-12-31"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def yahoo():
    """The fixture server on the seeded simulator: the 82 built-in stocks."""
    from ingest.server import MarketData, ServerThread, YahooServer
    from ingest.universe import listing_rows

    market = MarketData.from_simulator(listing_rows(), date(2025, 1, 10), 7)
    with ServerThread(YahooServer(market)) as thread:
        yield thread.base_url


def ingest(db: Path, base_url: str, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stockml.cli",
            "ingest",
            "--db",
            str(db),
            "--base-url",
            base_url,
            "--rate",
            "200",
            "--start",
            START,
            "--end",
            END,
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=preexec_fn,
    )


def rows_in_the_file_alone(db: Path, tmp: Path) -> int:
    """Rows of `prices` in a copy of the store file without its WAL (0 without the table)."""
    copy = tmp / f"copy-of-{db.name}"
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(copy), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return con.execute("SELECT count(*) FROM prices").fetchone()[0] if "prices" in tables else 0
    finally:
        con.close()
        copy.unlink()


def assert_ok_means_in_the_file(done, db: Path, tmp: Path, expected: int | None) -> None:
    if done.returncode == 0:
        assert rows_in_the_file_alone(db, tmp) == expected, "ok, but the store file lacks rows"
        return
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("stockml: error: ") and "rerun the same command" in lines[0]


@pytest.fixture(scope="module")
def full_rows(yahoo, tmp_path_factory) -> int:
    """Rows of the same ingest with room to spare."""
    db = tmp_path_factory.mktemp("roomy") / "s.duckdb"
    done = ingest(db, yahoo)
    assert done.returncode == 0, done.stderr
    return rows_in_the_file_alone(db, db.parent)


def test_ingest_under_a_file_size_limit_says_ok_only_with_the_rows_in_the_file(
    yahoo, full_rows, tmp_path
):
    """`ulimit -f 4096` (4 MiB per file): the checkpoint cannot write the store file, so
    the command fails in one line (exit 2) instead of saying ok; rerun without the limit,
    it completes and the store file alone holds every row."""
    db = tmp_path / "s.duckdb"
    limited = ingest(db, yahoo, file_size_limit(4 << 20))
    assert limited.returncode != 0, "ok under a 4 MiB file limit: the rows are only in the WAL"
    assert_ok_means_in_the_file(limited, db, tmp_path, full_rows)
    assert "only in" in limited.stderr or "no room left" in limited.stderr
    again = ingest(db, yahoo)
    assert again.returncode == 0, again.stderr
    assert not Path(f"{db}.wal").exists()
    assert rows_in_the_file_alone(db, tmp_path) == full_rows


def test_ingest_on_a_small_disk_says_ok_only_with_the_rows_in_the_file(yahoo, full_rows, tmp_path):
    """On an 8 MiB tmpfs the ingest fails in one line or ends ok with every row in the
    store file; with the disk grown the rerun completes and the file holds every row."""
    with tmpfs(tmp_path / "disk", "8m") as disk:
        db = disk / "s.duckdb"
        small = ingest(db, yahoo)
        assert_ok_means_in_the_file(small, db, tmp_path, full_rows)
        subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)
        again = ingest(db, yahoo)
        assert again.returncode == 0, again.stderr
        assert rows_in_the_file_alone(db, tmp_path) == full_rows


def test_close_checkpoints_what_a_writer_committed(tmp_path):
    """`store.close` leaves no WAL: a copy of the file alone holds the committed rows."""
    db = tmp_path / "s.duckdb"
    con = store.connect(db)
    con.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)")
    con.execute("INSERT INTO t SELECT range FROM range(100000)")
    store.close(con)
    assert not Path(f"{db}.wal").exists()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(copy), read_only=True)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 100_010
    con.close()


def test_a_failed_checkpoint_does_not_hide_the_error_on_its_way_out(tmp_path):
    """Closing in a `finally` while another error propagates lets that error through."""
    db = tmp_path / "s.duckdb"
    con = store.connect(db)
    with pytest.raises(ZeroDivisionError):
        try:
            1 / 0  # noqa: B018
        finally:
            store.close(con)


@pytest.fixture(scope="module")
def labelled_store(sp500_bars, tmp_path_factory) -> Path:
    """Twelve real stocks, 2017-2021, with features and labels (`stockml backtest`)."""
    import polars as pl

    from tests.conftest import insert_prices

    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:12]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    db = tmp_path_factory.mktemp("labelled") / "s.duckdb"
    con = store.connect(db)
    insert_prices(con, bars)
    store.close(con)
    done = subprocess.run(
        [sys.executable, "-m", "stockml.cli", "backtest", "--db", str(db), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return db


def test_train_on_a_full_disk_is_one_line_and_the_rerun_completes(labelled_store, tmp_path):
    """The store on a tmpfs with 300 KB to spare: `stockml train` ends in one line, exit 2,
    the store still opens; with the disk grown the same command records the run."""
    train = [sys.executable, "-m", "stockml.cli", "train", "--models", "logistic"]
    train += ["--windows", "1", "--quiet"]
    with tmpfs(tmp_path / "disk", "64m") as disk:
        db = disk / "s.duckdb"
        shutil.copy(labelled_store, db)
        fill(disk, leave=300 * 1024)
        full = subprocess.run(
            [*train, "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        lines = full.stderr.strip().splitlines()
        assert full.returncode == 2 and len(lines) == 1, full.stderr[-3000:]
        assert lines[0].startswith("stockml: error: ") and "rerun" in lines[0]
        (disk / "filler").unlink()
        again = subprocess.run(
            [*train, "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        assert again.returncode == 0, again.stderr[-3000:]
        con = duckdb.connect(str(db), read_only=True)
        assert con.execute("SELECT count(*) FROM training_runs").fetchone()[0] == 1
        con.close()
