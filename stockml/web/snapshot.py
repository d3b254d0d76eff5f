"""Read the store without ever locking its owner out: serve from a private snapshot copy.

DuckDB lets one process open a file to write, or any number to read, never both at once,
and a second opener fails at once instead of waiting. A page that opened the store for
each request, even read-only and briefly, would therefore make a `stockml ingest` or
`stockml train` starting in that instant fail with "in use by another process". So the
web server never opens the user's file with DuckDB at all:

- it copies the file (and a leftover `.wal`, if a crashed writer left one) into a private
  temporary folder and opens *that copy* read-only; requests read the copy;
- before using the copy it `stat`s the store: when the file changed since the copy was
  taken, it asks the kernel whether some process holds DuckDB's write lock on the file
  (`fcntl(F_GETLK)`: a query that takes no lock itself, so it cannot get in a writer's
  way). Only when no writer holds it is a new copy made; it is kept only if the file is
  still unlocked and unchanged once the copy is complete (else a writer started during
  the copy and the copy may be torn: it is thrown away and the previous one kept);
- while a writer works, pages show the last consistent copy, with a note naming the
  writer's pid; before any copy exists, `StoreBusy` (a 503 page that reloads itself).

Why not open per request and make writers retry on a lock? That would also work, but
costs every writer a change in behaviour, blanks the page for the whole length of an
ingest or a training run (minutes), and a writer retrying for a bounded time can still
lose to a page refreshed in a loop. Copying costs one file copy per change of the store
(about 1 s per GB), paid by the page, never by the writer. The lock query reads
`struct flock` as Linux lays it out (macOS also handled); DuckDB's own lock is an
`fcntl` lock over the whole file on both.

Copies never outlive their use: a copy that cannot be made (a full TMPDIR) or opened (a
damaged or non-DuckDB file) is deleted at once and the reason raised as one `StoreError`
line, remembered until the file changes (so requests do not copy a damaged store again
and again); a replaced copy is deleted when its last reader finishes; the folder goes at
shutdown. A server killed with -9 cannot clean up, so each server's own folder
(`stockml-serve-*` in TMPDIR) holds a `.lock` it keeps `flock`ed while it runs, and a
starting server deletes the folders whose lock nobody holds (`remove_stale_folders`).

Shapes: `Snapshots(source, folder)`; `with snapshots.reader() as (cursor, info):` gives a
DuckDB cursor on the current copy (one per request, closed on exit) and a `SnapshotInfo`,
whose `memo` keeps a query's answer for as long as the copy is current (a copy never
changes): the signals page of 500 symbols is then a template render, not a query.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import structlog

from stockml.errors import StockmlError, StoreError
from stockml.store.connection import utcnow

log = structlog.get_logger("web")

# struct flock: Linux orders type, whence, start, len, pid; BSD/macOS start, len, pid, type,
# whence. Native alignment; trailing padding so the kernel never reads past the buffer.
_FLOCK_DARWIN = sys.platform == "darwin"
_FLOCK = "qqihh" if _FLOCK_DARWIN else "hhqqi4x"
FOLDER_PREFIX = "stockml-serve-"
LOCK_NAME = ".lock"
COPY_RETRY = 2.0  # seconds before a copy that failed for want of space is tried again
RECENT = 64  # large answers (rendered symbol pages) kept per copy, newest first
_RECENT, _RECENT_LOCK = "_recent", "_recent_lock"  # their keys in a copy's cache


class StoreBusy(StockmlError):
    """A writer holds the store and no earlier copy exists yet to show."""


def writer_pid(path: Path) -> int | None:
    """The pid of a process holding DuckDB's write lock on `path`, else None. Takes no
    lock (F_GETLK only asks); a process holding a read lock is not a writer."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _FLOCK_DARWIN:
            request = struct.pack(_FLOCK, 0, 0, 0, fcntl.F_WRLCK, os.SEEK_SET)
            _, _, pid, kind, _ = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, request))
        else:
            request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, request))
    finally:
        os.close(fd)
    return pid if kind == fcntl.F_WRLCK else None


def _stamp(path: Path) -> tuple[int, int, int, int]:
    """(mtime_ns, size) of the store and of its WAL: any write changes one of them."""
    main = path.stat()
    try:
        wal = Path(f"{path}.wal").stat()
        extra = (wal.st_mtime_ns, wal.st_size)
    except FileNotFoundError:
        extra = (0, -1)
    return (main.st_mtime_ns, main.st_size, *extra)


@dataclass(frozen=True)
class SnapshotInfo:
    """What a page says about the data it shows."""

    taken_at: datetime  # UTC, naive: when the copy was made
    writer: int | None  # pid of a process writing the store now (the copy may be behind)
    cache: dict = field(default_factory=dict, compare=False)  # results kept with the copy

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()` once per copy: a copy never changes, so neither does a query's
        answer on it (two threads may both compute it the first time; either result is
        the same)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def recent(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()` kept among the RECENT answers last asked of this copy: for answers
        too large to keep one per key (a symbol's page is ~250 KB; a store may hold 5,000
        symbols)."""
        kept = self.cache.setdefault(_RECENT, OrderedDict())
        lock = self.cache.setdefault(_RECENT_LOCK, threading.Lock())
        with lock:
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
        value = compute()
        with lock:
            kept[key] = value
            while len(kept) > RECENT:
                kept.popitem(last=False)
        return value


class _Snapshot:
    def __init__(self, path: Path, stamp: tuple, taken_at: datetime) -> None:
        self.path = path
        self.stamp = stamp
        self.taken_at = taken_at
        self.con = duckdb.connect(str(path), read_only=True)
        self.users = 0
        self.retired = False
        self.cache: dict = {}

    def close(self) -> None:
        self.con.close()
        for file in (self.path, Path(f"{self.path}.wal")):
            file.unlink(missing_ok=True)


class Snapshots:
    """The current read-only copy of `source`, renewed when the store changed and no
    writer holds it. Thread-safe; at most one copy is made at a time."""

    def __init__(
        self, source: Path, folder: Path | None = None, check_interval: float = 0.25
    ) -> None:
        self.source = Path(source)
        self.check_interval = check_interval  # seconds between two lock queries
        self._lock = threading.Lock()
        self._copying = threading.Lock()
        self._current: _Snapshot | None = None
        self._checked = 0.0
        self._writer: int | None = None
        self._serial = 0
        # (store stamp, why it cannot be copied or read, monotonic time to try again)
        self._failed: tuple[tuple, str, float] | None = None
        if not self.source.is_file():
            raise StoreError(f"no store at {self.source}: run `stockml ingest` first (or --db)")
        self._held: int | None = None
        if folder is None:
            folder, self._held = own_folder(Path(tempfile.gettempdir()))
        self.folder = Path(folder)

    def _refresh(self) -> None:
        """Copy the store if it changed and is not being written (see the module doc)."""
        current = self._current
        try:
            stamp = _stamp(self.source)
        except FileNotFoundError:  # moved away or being replaced: keep the last copy
            return
        if current is not None and stamp == current.stamp:
            self._writer = None
            return
        failed = self._failed
        if failed is not None and failed[0] == stamp and time.monotonic() < failed[2]:
            if current is None:
                raise StoreError(failed[1])
            return
        if current is not None and time.monotonic() - self._checked < self.check_interval:
            return
        self._checked = time.monotonic()
        self._writer = writer_pid(self.source)
        if self._writer is not None:
            return
        self._serial += 1
        target = self.folder / f"snapshot-{self._serial}.duckdb"
        try:
            fresh = self._copy(target, stamp)
        except StoreError as exc:
            _remove_copy(target)
            # A damaged store stays so until it changes; a full disk may be freed soon.
            again = COPY_RETRY if isinstance(exc.__cause__, OSError) else math.inf
            self._failed = (stamp, str(exc), time.monotonic() + again)
            log.error("snapshot_failed", source=str(self.source), error=str(exc))
            if current is None:
                raise
            return
        if fresh is None:
            return
        self._failed = None
        log.info("snapshot_taken", source=str(self.source), bytes=stamp[1], serial=self._serial)
        with self._lock:
            old, self._current = self._current, fresh
            if old is not None:
                old.retired = True
                if old.users == 0:
                    old.close()

    def _copy(self, target: Path, stamp: tuple) -> _Snapshot | None:
        """The store (and a leftover WAL) copied to `target` and opened; None when a
        writer started meanwhile (the copy is deleted). StoreError, in one line, when the
        copy cannot be made or read: the caller deletes what was copied."""
        name = self.source.name
        taken_at = utcnow()
        wal = Path(f"{self.source}.wal")
        try:
            shutil.copyfile(self.source, target)
            if wal.exists():
                shutil.copyfile(wal, Path(f"{target}.wal"))
        except OSError as exc:
            raise StoreError(
                f"cannot copy {name} into {self.folder} ({exc.strerror}): "
                "free space there or start the server with TMPDIR set to a larger disk"
            ) from exc
        self._writer = writer_pid(self.source)
        if self._writer is not None or _stamp(self.source) != stamp:
            log.info("snapshot_discarded", writer=self._writer, reason="store changed in copy")
            _remove_copy(target)
            return None
        try:
            return _Snapshot(target, stamp, taken_at)
        except duckdb.Error as exc:
            raise StoreError(f"cannot read {name}: {str(exc).splitlines()[0]}") from exc

    @contextmanager
    def reader(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, SnapshotInfo]]:
        """A cursor on the newest consistent copy, and what the page should say about it.
        Raises StoreBusy when a writer holds the store and no copy exists yet."""
        # One request copies; the others read the previous copy meanwhile (or wait for the
        # first one).
        if self._copying.acquire(blocking=self._current is None):
            try:
                self._refresh()
            finally:
                self._copying.release()
        with self._lock:
            snap = self._current
            if snap is None:
                who = f"process {self._writer}" if self._writer else "another process"
                raise StoreBusy(
                    f"{self.source.name} is being written by {who}; "
                    "this page shows its data once that finishes"
                )
            snap.users += 1
            cursor = snap.con.cursor()
            info = SnapshotInfo(snap.taken_at, self._writer, snap.cache)
        try:
            yield cursor, info
        finally:
            cursor.close()
            with self._lock:
                snap.users -= 1
                if snap.retired and snap.users == 0:
                    snap.close()

    def close(self, remove_folder: bool = False) -> None:
        """Close and delete the current copy (at server shutdown); with `remove_folder`,
        the folder too (the one `Snapshots` made when given none)."""
        with self._lock:
            if self._current is not None:
                self._current.close()
                self._current = None
        if remove_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._held is not None:
            os.close(self._held)
            self._held = None


def _remove_copy(target: Path) -> None:
    for file in (target, Path(f"{target}.wal")):
        file.unlink(missing_ok=True)


def own_folder(parent: Path) -> tuple[Path, int]:
    """A new `stockml-serve-*` folder in `parent` and the descriptor of its `.lock`, held
    with `flock` until closed (or the process dies): how other servers know it is in use.
    StoreError when `parent` cannot take it."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent))
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(
            f"cannot create the server's folder in {parent} ({exc.strerror}): set TMPDIR"
        ) from exc
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return folder, fd


def remove_stale_folders(parent: Path) -> list[Path]:
    """Delete the `stockml-serve-*` folders in `parent` left by servers that died (their
    `.lock` held by nobody); folders without a `.lock` are not ours and are kept. Returns
    the folders removed."""
    removed = []
    for folder in sorted(parent.glob(f"{FOLDER_PREFIX}*")):
        lock = folder / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a running server holds it
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        log.info("stale_snapshots_removed", folder=str(folder))
    return removed
