"""Bad input through the real `stockml` command: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ingest_support import load_market, serving

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("stockml: error:") and fragment in lines[-1], proc.stderr
    assert len([line for line in lines if line.startswith("stockml: error:")]) == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--symbols", "AA$PL"], "malformed symbol 'AA$PL'"),
        (["--symbols", "AAPL", "--start", "2021-03-01", "--end", "2021-01-01"], "is after --end"),
        (["--symbols", "AAPL", "--start", "01/02/2021"], "is not a date"),
        (["--universe", "nope"], "unknown universe 'nope'"),
        (["--symbols", "AAPL", "--transport", "telnet"], "--transport must be"),
    ],
)
def test_bad_flags_fail_before_any_request(args, fragment, tmp_path):
    """Malformed input is refused with one line and exit 2, and no store is created."""
    db = tmp_path / "s.duckdb"
    proc = run_cli("ingest", *args, "--db", str(db), "--base-url", "http://127.0.0.1:9")
    assert_one_line_error(proc, 2, fragment)
    assert not db.exists()


def test_unwritable_db_path_is_one_line(tmp_path):
    """A --db whose folder cannot be created is a clear error, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli("ingest", "--symbols", "AAPL", "--db", str(blocker / "x.duckdb"))
    assert_one_line_error(proc, 2, "cannot create the folder")


def test_db_held_by_a_plain_duckdb_reader_is_one_line_naming_it(tmp_path):
    """A store held open by another program (here a read-only DuckDB reader, as a notebook
    would) is reported as that program, with its pid, not as a stockml process."""
    db = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys,time; duckdb.connect({str(db)!r}).close(); "
            f"c=duckdb.connect({str(db)!r}, read_only=True); print('ready', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = run_cli("ingest", "--symbols", "AAPL", "--db", str(db))
        assert_one_line_error(proc, 2, f"held open by another program (pid {holder.pid}: ")
        assert "stockml process" not in proc.stderr and "even read-only" in proc.stderr
    finally:
        holder.kill()
        holder.wait()


def test_db_held_by_a_running_stockml_command_names_it(sp500_parquet, tmp_path):
    """A store held by a running `stockml ingest` (waiting on a hung request) is reported
    as in use by another stockml process."""
    db = tmp_path / "s.duckdb"
    market = load_market(sp500_parquet, ["AAPL"])
    with serving(market, faults="AAPL=hang*") as server:
        command = [sys.executable, "-m", "stockml.cli", "ingest", "--symbols", "AAPL"]
        flags = ["--timeout", "30", "--retries", "0", "--base-url", server.base_url, "--quiet"]
        first = subprocess.Popen([*command, "--db", str(db), *flags], cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while not any(r.fault == "hang" for r in server.server.log):
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.1)
            proc = run_cli("ingest", "--symbols", "AAPL", "--db", str(db))
            assert_one_line_error(proc, 2, f"in use by another stockml process (pid {first.pid})")
        finally:
            first.kill()
            first.wait()


def test_unknown_symbol_fails_with_reason_and_exit_4(sp500_parquet, tmp_path):
    """An unknown ticker ends failed with Yahoo's reason; the good one is stored; exit 4."""
    market = load_market(sp500_parquet, ["AAPL"])
    with serving(market) as server:
        proc = run_cli(
            "ingest",
            "--symbols",
            "AAPL,ZZZZQ",
            "--start",
            "2021-01-04",
            "--end",
            "2021-03-31",
            "--base-url",
            server.base_url,
            "--rate",
            "50",
            "--db",
            str(tmp_path / "s.duckdb"),
        )
    assert_one_line_error(proc, 4, "1 of 2 symbols failed (ZZZZQ)")
    assert "unknown symbol" in proc.stderr


def test_every_command_documents_every_flag():
    """`stockml --help` lists the commands; each flag of ingest has help text."""
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("ingest", "serve-yahoo"):
        assert command in top.stdout
    help_text = run_cli("ingest", "--help").stdout
    for flag in (
        "--symbols",
        "--universe",
        "--start",
        "--end",
        "--base-url",
        "--rate",
        "--concurrency",
        "--timeout",
        "--retries",
        "--db",
        "--transport",
        "--proxy",
    ):
        assert flag in help_text, flag


def test_help_is_fast():
    """`stockml --help` does not import the heavy stages (numba, ray, sklearn)."""
    started = time.monotonic()
    proc = run_cli("--help")
    assert proc.returncode == 0
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, stockml.cli; "
            "print(','.join(m for m in ('numba','ray','sklearn','xgboost') if m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "", probe.stdout
    assert time.monotonic() - started < 30
