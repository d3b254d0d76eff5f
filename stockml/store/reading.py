"""Reading the store while another process writes it: the last consistent state, dated.

DuckDB lets one process open a file to write or any number to read, never both, and a
second opener fails at once. `stockml ingest`, `backtest` and `train` hold the store for
minutes to hours (train mostly fits models and writes nothing for most of that time, but
keeps its connection), so a read that simply opened the file would be refused for as long.

So a long writer first keeps a *reading copy*: `keep_reading_copy(db)`, called by the
commands before they open the store to write, copies the file to `<db>.snapshot` when it
changed since the last copy and no process is writing it (asked with `F_GETLK`, see
locks.py; the copy is kept only if the file is still unwritten and unchanged once copied,
then renamed into place, so a reader never sees half a copy). It costs the writer one
file copy per change of the store (benchmarks/bench_reads.py: 0.11 s for the 80 MB demo
store; 30 s for 2.5 GB on this machine under load, 0.08 GB/s) and is skipped above
READING_COPY_MAX_BYTES, 1 GiB ($STOCKML_READING_COPY_MAX_GB), where it would cost a
writer more than its own start: readers of a larger store then wait for the writer.

`open_for_reading(db)` then opens the store itself, read-only, when nobody writes it (the
freshest state, and the common case); when a writer holds it, the reading copy, with a
`Reading.moment` that says which state the reader sees: the store as it was when the
writer (named, with its pid) began. A writer that meets a reader instead waits a few
seconds for it (`connection.connect`), so a query never makes a cron'd ingest fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import structlog

from stockml.errors import StoreError
from stockml.memory import MemoryBudget
from stockml.store.locks import LockHolder, lock_holder, process_name

READING_COPY_MAX_BYTES = 2**30
READING_COPY_MAX_ENV = "STOCKML_READING_COPY_MAX_GB"

log = structlog.get_logger("store")


def reading_copy_path(db: Path) -> Path:
    """data/stockml.duckdb -> data/stockml.duckdb.snapshot"""
    return Path(f"{db}.snapshot")


def _max_bytes() -> float:
    text = os.environ.get(READING_COPY_MAX_ENV)
    try:
        return float(text) * 2**30 if text else READING_COPY_MAX_BYTES
    except ValueError:
        return READING_COPY_MAX_BYTES


def _stamp(path: Path) -> tuple[int, int, bool]:
    """(mtime_ns, size, has a WAL): every committed write changes one of them."""
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, Path(f"{path}.wal").exists())


def keep_reading_copy(db: Path) -> Path | None:
    """Copy `db` to its reading copy if it changed since the last one and nobody writes it
    (see the module doc). Returns the copy's path, or None when there is no store yet, a
    writer holds it, a crashed writer left a WAL, or it is above the size cap. Never
    raises for a copy it could not make: the writer goes on, readers then wait."""
    db = Path(db)
    copy = reading_copy_path(db)
    try:
        stamp = _stamp(db)
    except FileNotFoundError:
        return None
    holder = lock_holder(db)
    if stamp[2] or (holder is not None and holder.writing):
        return None
    if copy.exists() and copy.stat().st_mtime_ns >= stamp[0]:
        return copy  # taken after the store's last change: still current
    if stamp[1] > _max_bytes():
        log.info("reading_copy_skipped", db=str(db), bytes=stamp[1], max_bytes=_max_bytes())
        copy.unlink(missing_ok=True)  # an older copy would now be a wrong answer
        return None
    started = time.perf_counter()
    partial = copy.with_name(f"{copy.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(db, partial)
        holder = lock_holder(db)
        if _stamp(db) != stamp or (holder is not None and holder.writing):
            partial.unlink(missing_ok=True)
            return None
        os.replace(partial, copy)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        log.warning("reading_copy_failed", db=str(db), error=str(exc))
        return None
    log.info(
        "reading_copy_kept",
        db=str(db),
        bytes=stamp[1],
        seconds=round(time.perf_counter() - started, 3),
    )
    return copy


@dataclass
class Reading:
    """A read-only connection and which state of the store it reads."""

    con: duckdb.DuckDBPyConnection
    path: Path  # the file opened: the store, or its reading copy
    writer: LockHolder | None = None  # who writes the store meanwhile (copy only)
    taken_at: datetime | None = None  # local time the copy was taken (copy only)

    @property
    def live(self) -> bool:
        return self.writer is None

    def moment(self, db: Path) -> str:
        """One sentence for the person: what they are looking at ('' when live)."""
        if self.live:
            return ""
        who = process_name(self.writer.pid) or "another process"
        return (
            f"{db} is being written by {who} (pid {self.writer.pid}): showing it as it was at "
            f"{self.taken_at:%Y-%m-%d %H:%M:%S}, before that write began"
        )

    def close(self) -> None:
        self.con.close()


def open_for_reading(db: Path) -> Reading:
    """The store read-only, or its reading copy while another process writes it (see the
    module doc). Raises StoreError when there is no store, or a writer holds it and no
    copy of an earlier state exists."""
    from stockml.store.connection import connect

    db = Path(db)
    if not db.is_file():
        return Reading(connect(db, read_only=True), db)  # raises the one-line StoreError
    holder = lock_holder(db)
    if holder is None or not holder.writing:
        try:
            return Reading(connect(db, read_only=True), db)
        except StoreError:
            holder = lock_holder(db)  # a writer began in between
            if holder is None or not holder.writing:
                raise
    copy = reading_copy_path(db)
    who = process_name(holder.pid) or "another process"
    if not copy.is_file():
        raise StoreError(
            f"{db} is being written by {who} (pid {holder.pid}) and no copy of its earlier "
            "state exists to read: wait for it to finish"
        )
    try:
        con = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"cannot read {copy}: {str(exc).splitlines()[0]}") from exc
    MemoryBudget.of(None).bound_duckdb(con)
    taken_at = datetime.fromtimestamp(copy.stat().st_mtime)
    return Reading(con, copy, holder, taken_at)


def require_store(db: Path) -> Path:
    """`db` if it is a file; else the one-line StoreError a read command gives instead of
    creating an empty store where the user mistyped a path."""
    db = Path(db)
    if db.is_dir():
        raise StoreError(f"--db {db} is a directory, not a DuckDB file")
    if not db.is_file():
        raise StoreError(f"no store at {db}: run `stockml ingest` first (or pass --db)")
    return db


@contextmanager
def private_copy(db: Path) -> Iterator[tuple[Path, Reading]]:
    """While a writer holds `db`: a private, writable copy of its reading copy (a command
    that also writes, like `stockml signals`, may change it; the store stays untouched),
    beside a link to the store's `runs` folder, with the `Reading` that dates it. Deleted
    on exit. Raises StoreError as `open_for_reading` does."""
    reading = open_for_reading(db)
    reading.close()
    runs = Path(db).resolve().parent / "runs"  # the store's run folders (training/recorder.py)
    with tempfile.TemporaryDirectory(prefix="stockml-read-") as folder:
        target = Path(folder) / Path(db).name
        shutil.copyfile(reading.path, target)
        if runs.is_dir():  # the copy's runs are the store's: same place, read only
            (Path(folder) / "runs").symlink_to(runs, target_is_directory=True)
        yield target, reading
