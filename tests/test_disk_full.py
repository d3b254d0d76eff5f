"""A full disk during `stockml backtest` or `ingest` (issue 25): one line and exit 2, not a
traceback (nor a failure per symbol); what was committed is kept and the rerun, with room
again, completes. The disk is a real tmpfs a few MB larger than the store (root can mount
one here and in CI); where mounting is not allowed, a file-size limit on the process
(RLIMIT_FSIZE) stands in for it."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl

from stockml import store
from tests.conftest import insert_prices

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20


def _mount(folder: Path, size: int) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}"
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


def _backtest(db: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    return _cli(["backtest", "--db", str(db), "--quiet"], limit)


def _cli(args: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    def cap() -> None:  # the stand-in for a full disk: writes past `limit` bytes fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=cap if limit is not None else None,
    )


def test_a_full_disk_during_backtest_is_one_line_and_the_rerun_completes(sp500_bars, tmp_path):
    """15 real stocks x 3 years of prices on a disk with 2 MB to spare: the features do not
    fit. One line on stderr naming the cause, exit 2; the prices are intact; with room
    again the same command completes."""
    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:15]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2018, 1, 1)))
    made = tmp_path / "made.duckdb"
    con = store.connect(made)
    insert_prices(con, bars)
    con.close()
    size = made.stat().st_size
    disk = tmp_path / "disk"
    mounted = _mount(disk, size + 2 * MB)
    db = disk / "s.duckdb" if mounted else made
    try:
        if mounted:
            shutil.copy(made, db)
        full = _backtest(db, None if mounted else size + 2 * MB)
        assert full.returncode == 2, full.stderr
        lines = full.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
        assert lines[0].startswith("stockml: error: no room left to write (")
        assert "rerun the same command" in lines[0]
        if mounted:
            grown = f"remount,size={512 * MB}"
            subprocess.run(["mount", "-o", grown, str(disk)], check=True)
        again = _backtest(db)
        assert again.returncode == 0, again.stderr
        con = store.connect(db, read_only=True)
        try:
            prices = con.execute("SELECT count(*) FROM prices").fetchone()[0]
            features = con.execute("SELECT count(*) FROM features").fetchone()[0]
        finally:
            con.close()
        assert prices == bars.height and features == bars.height
    finally:
        if mounted:
            with contextlib.suppress(Exception):
                subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_during_ingest_stops_the_run_in_one_line(sp500_parquet, tmp_path):
    """`stockml ingest` of 30 real stocks x 20 years into a store on a 3 MB disk: one line,
    exit 2 (not 30 failed symbols and exit 4); with room again the rerun stores them all."""
    from tests.ingest_support import load_market, serving

    market = load_market(sp500_parquet)
    symbols = sorted(market.series)[:30]
    disk = tmp_path / "disk"
    mounted = _mount(disk, 3 * MB)
    folder = disk if mounted else tmp_path / "capped"
    folder.mkdir(exist_ok=True)
    db = folder / "s.duckdb"
    try:
        with serving(market) as srv:
            args = ["ingest", "--symbols", ",".join(symbols), "--start", "2001-01-02"]
            args += ["--end", "2021-04-21", "--db", str(db), "--base-url", srv.base_url]
            args += ["--rate", "200", "--quiet"]
            full = _cli(args, None if mounted else 3 * MB)
            assert full.returncode == 2, full.stderr
            lines = full.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
            assert lines[0].startswith("stockml: error: no room left to write (")
            if mounted:
                subprocess.run(["mount", "-o", f"remount,size={512 * MB}", str(disk)], check=True)
            again = _cli(args)
        assert again.returncode == 0, again.stderr
        con = store.connect(db, read_only=True)
        try:
            ok = con.execute("SELECT count(*) FROM ingest_status WHERE status = 'ok'").fetchone()
        finally:
            con.close()
        assert ok[0] == len(symbols)
    finally:
        if mounted:
            with contextlib.suppress(Exception):
                subprocess.run(["umount", str(disk)], capture_output=True)
