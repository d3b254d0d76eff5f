"""Results on stdout, diagnostics on stderr, in the format the reader asks for; and reads
that keep working while another stockml process writes the store, saying which moment
they show."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from stockml.commands.signals import SHOWN as SHOWN_COLUMNS
from stockml.store.locks import lock_holder
from tests.cli_support import ROOT, assert_one_line_error, cli_env, run_cli, run_in_terminal

pytestmark = pytest.mark.slow

SHOWN = list(SHOWN_COLUMNS)


@pytest.fixture(scope="module")
def trained(quick_demo_store, tmp_path_factory) -> Path:
    """The quick demo store with one training run (logistic regression, one window)."""
    db = tmp_path_factory.mktemp("trained") / "demo.duckdb"
    shutil.copyfile(quick_demo_store, db)
    args = ["--models", "logistic", "--windows", "1", "--quiet"]
    proc = run_cli("train", "--db", str(db), *args, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("signals", "--db", str(db))  # stores them in the signals table
    assert proc.returncode == 0, proc.stderr
    return db


def stored(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_signals_2_devnull_wc_l_counts_the_signals(trained):
    """`stockml signals 2>/dev/null | wc -l` is the header and one line per signal; the
    summary (counts, what each signal type achieved) is on stderr only."""
    count = run_cli_shell(f"stockml signals --db {trained} 2>/dev/null | wc -l")
    signals = stored(trained, "SELECT count(*) FROM signals")[0][0]
    assert signals > 0 and int(count) == signals + 1
    proc = run_cli("signals", "--db", str(trained))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == signals and list(rows[0]) == SHOWN
    assert "BUY CALL" in proc.stderr and "BUY PUT" in proc.stderr
    assert "BUY CALL (threshold" not in proc.stdout and "walk-forward" not in proc.stdout


def run_cli_shell(command: str) -> str:
    """A shell pipeline with `stockml` meaning this checkout's command."""
    stockml = f"{sys.executable} -m stockml.cli"
    done = subprocess.run(
        ["bash", "-c", command.replace("stockml ", stockml + " ", 1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "table"])
def test_signals_in_every_format_have_every_signal_and_column(trained, fmt):
    proc = run_cli("signals", "--db", str(trained), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    signals = stored(trained, "SELECT count(*) FROM signals")[0][0]
    out = proc.stdout
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == signals and list(rows[0]) == SHOWN
    elif fmt == "markdown":
        lines = out.splitlines()
        assert lines[0] == "| " + " | ".join(SHOWN) + " |" and len(lines) == signals + 2
    else:
        header = next(line for line in out.splitlines() if "symbol" in line)
        assert all(name in header for name in SHOWN)
        assert len([ln for ln in out.splitlines() if "HOLD" in ln or "BUY" in ln]) == signals


def test_sql_output_is_never_cut_when_piped(trained):
    """`SELECT * FROM samples` piped: csv by default with every one of its columns; a
    table asked for explicitly is drawn as wide as its columns, all of them."""
    columns = [r[0] for r in stored(trained, "DESCRIBE samples")]
    assert len(columns) > 200
    query = "SELECT * FROM samples WHERE label IS NOT NULL ORDER BY symbol, date LIMIT 3"
    proc = run_cli("sql", query, "--db", str(trained))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == columns and len(rows) == 4
    table = run_cli("sql", query, "--db", str(trained), "--format", "table")
    header = table.stdout.splitlines()[1]
    assert all(f" {name} " in header for name in columns), header[:300]
    assert "…" not in table.stdout and "more columns" not in table.stderr


def test_sql_formats_keep_values_and_odd_types(trained):
    """json and markdown as asked; an INTERVAL or a list column is text, not a crash."""
    query = "SELECT 42 AS answer, NULL AS nothing, INTERVAL 3 DAY AS span, [1, 2] AS pair"
    as_json = run_cli("sql", query, "--db", str(trained), "--format", "json")
    assert json.loads(as_json.stdout) == [
        {"answer": 42, "nothing": None, "span": "3 days", "pair": [1, 2]}
    ]
    as_csv = run_cli("sql", query, "--db", str(trained))
    assert as_csv.stdout.splitlines() == ["answer,nothing,span,pair", '42,,3 days,"[1, 2]"']
    markdown = run_cli("sql", query, "--db", str(trained), "--format", "markdown")
    assert markdown.stdout.splitlines()[2] == "| 42 | NULL | 3 days | [1, 2] |"
    commented = run_cli("sql", "-- the answer\nSELECT 42 AS answer", "--db", str(trained))
    assert commented.stdout.splitlines() == ["answer", "42"], commented.stderr


def test_a_wide_table_at_a_terminal_shows_what_fits_and_says_what_it_left_out(trained):
    """At a 100-column terminal, the leading columns drawn whole, a note naming how many
    more there are; no line wider than the terminal."""
    code, screen = run_in_terminal(
        "sql", "SELECT * FROM features LIMIT 3", "--db", str(trained), columns=100
    )
    assert code == 0, screen
    assert "symbol" in screen and "more columns not shown" in screen
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # the terminal's bold header
    drawn = [line for line in plain.splitlines() if "┃" in line or "│" in line]
    assert drawn and max(len(line.rstrip()) for line in drawn) <= 100


HOLDER = """
import sys, time
from stockml import store
from stockml.logs import configure_logging
configure_logging(None)
db = sys.argv[1]
store.keep_reading_copy(db)  # as every long-writing stockml command does first
con = store.connect(db)
con.execute("UPDATE symbols SET name = 'Changed Meanwhile' WHERE symbol = ?", [sys.argv[2]])
con.execute("DELETE FROM signals")
print("writing", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def held(trained, tmp_path):
    """A copy of the trained store, held by a writer that changed it (a symbol's name,
    and every stored signal deleted) and has not finished; yields (db, writer pid)."""
    db = tmp_path / "held.duckdb"
    shutil.copyfile(trained, db)
    shutil.copytree(trained.parent / "runs", tmp_path / "runs")  # the runs beside the store
    symbol = stored(db, "SELECT min(symbol) FROM symbols")[0][0]
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), symbol],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        yield db, writer.pid, symbol
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)


def test_sql_reads_the_state_before_the_write_and_says_so(held):
    """While a writer holds the store: the query answers from the state before that
    write began (the old name), and stderr names the writer and the moment."""
    db, pid, symbol = held
    proc = run_cli("sql", f"SELECT name FROM symbols WHERE symbol = '{symbol}'", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "Changed Meanwhile" not in proc.stdout and len(proc.stdout.splitlines()) == 2
    assert "is being written by" in proc.stderr and f"(pid {pid})" in proc.stderr
    assert "showing it as it was at" in proc.stderr


def test_signals_while_a_writer_works_prints_and_leaves_the_store_alone(held, trained):
    """`stockml signals` during a write: the signals (scored on the state before it) on
    stdout, a note that the store's table was not updated; the writer's own change to
    the signals table is what the store keeps."""
    db, pid, _ = held
    proc = run_cli("signals", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    expected = stored(trained, "SELECT count(*) FROM signals")[0][0]
    assert len(proc.stdout.splitlines()) == expected + 1
    assert "signals table was not updated" in proc.stderr and f"(pid {pid})" in proc.stderr
    assert lock_holder(db) is not None and lock_holder(db).writing


def test_a_writer_waits_for_a_reader_instead_of_failing(trained, tmp_path):
    """A read-only connection held for 2 s (a query running): `stockml backtest` waits for
    it and succeeds, where it used to fail at once with 'in use'."""
    db = tmp_path / "read.duckdb"
    shutil.copyfile(trained, db)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('reading', flush=True); time.sleep(2)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        started = time.monotonic()
        proc = run_cli("backtest", "--db", str(db), "--quiet")
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - started >= 1
    finally:
        reader.wait(timeout=30)


def test_no_earlier_copy_is_one_line(trained, tmp_path):
    """A writer that kept no reading copy (a store above the size cap): a read is one
    line naming the writer, exit 2."""
    db = tmp_path / "big.duckdb"
    shutil.copyfile(trained, db)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), "AAPL"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(STOCKML_READING_COPY_MAX_GB="0.000001"),
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        assert not Path(f"{db}.snapshot").exists()
        proc = run_cli("sql", "SELECT 1", "--db", str(db))
        assert_one_line_error(proc, 2, "no copy of its earlier state exists")
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)


def test_sql_and_signals_work_while_train_runs(trained, tmp_path):
    """The user's case: while `stockml train` fits, `stockml sql` and `stockml signals`
    answer (from the store as it was when train began) instead of refusing."""
    db = tmp_path / "train.duckdb"
    shutil.copyfile(trained, db)
    shutil.copytree(trained.parent / "runs", tmp_path / "runs")
    # Another model set: a new run, while the stored one stays readable for `signals`.
    args = ["train", "--db", str(db), "--quiet", "--models", "logistic,mlp", "--windows", "1"]
    train = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (holder := lock_holder(db)) is None or not holder.writing:
            assert train.poll() is None and time.monotonic() < deadline, "train never wrote"
            time.sleep(0.1)
        sql = run_cli("sql", "SELECT count(*) AS runs FROM training_runs", "--db", str(db))
        signals = run_cli("signals", "--db", str(db))
        still_writing = lock_holder(db)
    finally:
        _, err = train.communicate(timeout=1200)
    assert train.returncode == 0, err
    assert still_writing is not None, "train finished before the reads: nothing was tested"
    assert sql.returncode == 0 and sql.stdout.splitlines() == ["runs", "1"], sql.stderr
    assert "stockml train" in sql.stderr
    assert signals.returncode == 0 and len(signals.stdout.splitlines()) > 1, signals.stderr
