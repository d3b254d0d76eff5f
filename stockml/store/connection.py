"""Opening the store, transactions, queries as DataFrames, and the `settings` table.

`connect` is the only place that opens the DuckDB file; it maps file problems to one-line
`StoreError`s and creates (or migrates) the core tables (`schema.initialise`) on a
writable connect. `close` is how a writer lets go of it: only once what it wrote is in the
store file itself. The helpers here are shared by the modules that write each stage's
tables.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from stockml.errors import StoreError
from stockml.memory import MemoryBudget
from stockml.store.locks import lock_holder
from stockml.store.schema import initialise

DEFAULT_DB = Path("data/stockml.duckdb")

_LOCK_PID = re.compile(r"PID (\d+)")
# How long a writer waits for readers to let go of the file (see _open_waiting_for_readers).
READER_WAIT_S = 10.0


def utcnow() -> datetime:
    """Now in UTC, timezone-naive: how every TIMESTAMP column of the store is written."""
    return datetime.now(UTC).replace(tzinfo=None)


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store, mapping file problems to one-line StoreErrors."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise StoreError(f"--db {path} is a directory, not a DuckDB file")
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}: run `stockml ingest` first (or pass --db)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    try:
        con = _open_waiting_for_readers(path, read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise StoreError(_lock_holder_message(path, text)) from exc
        if "permission" in text.lower() or "read-only" in text.lower():
            raise StoreError(f"cannot write {path}: permission denied") from exc
        raise StoreError(f"cannot open {path}: {text.splitlines()[0]}") from exc
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {path}: {str(exc).splitlines()[0]}") from exc
    # DuckDB's own default is 80 % of RAM, and it keeps what a scan read cached up to it:
    # one query over a market-sized `features` table (the newest day's signals at 5,000
    # symbols x 20 years) held 19.5 GiB. Every connection starts bounded to the default
    # budget's share (stockml.memory); beyond it DuckDB spills to `<db>.tmp`.
    MemoryBudget.of(None).bound_duckdb(con)
    if not read_only:
        try:
            initialise(con)
        except duckdb.Error as exc:
            con.close()
            raise StoreError(f"cannot initialise {path}: {str(exc).splitlines()[0]}") from exc
    return con


def _lock_holder_message(path: Path, text: str) -> str:
    """Who holds DuckDB's lock on `path`, from the PID its error names: a stockml command,
    or another program (a notebook, the DuckDB CLI: even a read-only reader keeps every
    writer out)."""
    pid = _LOCK_PID.search(text)
    if pid is None:
        return f"{path} is in use by another process; wait for it or use another --db"
    try:
        raw = Path(f"/proc/{pid.group(1)}/cmdline").read_bytes()
        argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    except OSError:
        argv = []
    command = " ".join(argv)
    # The `stockml` script, or `python -m stockml.cli`: not any path that contains the word.
    if any(Path(a).name == "stockml" for a in argv[:2]) or "stockml.cli" in argv[1:3]:
        return (
            f"{path} is in use by another stockml process (pid {pid.group(1)}); "
            "wait for it or use another --db"
        )
    shown = f": {command[:80]}" if command else ""
    return (
        f"{path} is held open by another program (pid {pid.group(1)}{shown}); DuckDB lets "
        "no writer in while any process has the file open, even read-only: close that "
        "connection and rerun"
    )


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close a writer's connection once what it wrote is in the store file.

    DuckDB keeps committed writes in `<store>.wal` until a checkpoint folds them into the
    file, and its own close swallows a checkpoint that fails: on a full disk (or under a
    file-size limit) a command would say ok while the `.duckdb` file held no tables, and a
    copy of it, the thing a user backs up, lost everything. So checkpoint first, and check
    the WAL is gone: StoreError, one line saying what to do, when it is not. Called in a
    `finally` while another error is on its way out, a failed checkpoint does not hide it
    (the WAL still holds the writes: DuckDB replays it on the next open)."""
    found = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    path = Path(found[0]) if found and found[0] else None
    try:
        con.execute("CHECKPOINT")
        failure = None
    except duckdb.Error as exc:
        failure = exc
    con.close()
    wal = Path(f"{path}.wal") if path is not None else None
    if failure is None and (wal is None or not wal.exists() or wal.stat().st_size == 0):
        return
    if sys.exc_info()[1] is not None:
        return
    reason = str(failure).splitlines()[0] if failure is not None else "a write-ahead log is left"
    raise StoreError(
        f"what this command wrote is only in {wal}, not yet in {path} ({reason}): free "
        "space there and rerun the same command; nothing is lost (copy the .wal with the "
        "store until then)"
    ) from failure


def _open_waiting_for_readers(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """duckdb.connect; a writer that meets a reader (`stockml sql`, a `signals` read: read
    locks held for one query) retries for up to READER_WAIT_S instead of failing at once.
    A writer holding the file is not waited for: it may hold it for hours."""
    deadline = time.monotonic() + READER_WAIT_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if read_only or "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            holder = lock_holder(path)
            if holder is not None and holder.writing:
                raise
            time.sleep(0.1)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a crash or exception inside leaves the store as it was."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def query_pl(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """A query's rows as a polars DataFrame (zero-copy from DuckDB's Arrow output).

    DuckDB 2 refuses `con.sql()` while an `execute()` result is unfinished, so finish it.
    """
    con.complete()
    return con.sql(sql, params=list(params) if params is not None else None).pl()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """`frame` visible to SQL as the table `name` inside the block. Finishes any unfinished
    result first (DuckDB 2 refuses register() beside one)."""
    con.complete()
    con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        con.unregister(name)


def insert_frame(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, sql: str) -> None:
    """Run `sql` with `frame` visible as the table `_new`: one INSERT for many rows
    (executemany costs ~2 ms a row in DuckDB)."""
    with registered(con, "_new", frame):
        con.execute(sql)


def get_setting(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def set_setting(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])
