"""Who holds DuckDB's lock on a store file, asked without taking it.

DuckDB locks its file with an `fcntl` lock over the whole file: a write lock for a
read-write connection, a read lock for a read-only one, and refuses (at once) to open a
file another process holds in a conflicting way. `lock_holder` asks the kernel which
process holds it (`F_GETLK`, a query that takes no lock itself, so it can never get in a
writer's way), reading `struct flock` as Linux lays it out (macOS also handled). Locks held
by this very process are not reported (POSIX locks belong to a process).
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# struct flock: Linux orders type, whence, start, len, pid; BSD/macOS start, len, pid, type,
# whence. Native alignment; trailing padding so the kernel never reads past the buffer.
_DARWIN = sys.platform == "darwin"
_FLOCK = "qqihh" if _DARWIN else "hhqqi4x"


@dataclass(frozen=True)
class LockHolder:
    pid: int
    writing: bool  # a read-write connection (else a read-only one)

    def describe(self) -> str:
        return f"pid {self.pid}, {'writing' if self.writing else 'reading'}"


def lock_holder(path: Path) -> LockHolder | None:
    """The process holding DuckDB's lock on `path` (a writer if any, else a reader), or
    None when nobody holds it or the file does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _DARWIN:
            request = struct.pack(_FLOCK, 0, 0, 0, fcntl.F_WRLCK, os.SEEK_SET)
            _, _, pid, kind, _ = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, request))
        else:
            request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, request))
    finally:
        os.close(fd)
    if kind == fcntl.F_UNLCK:
        return None
    return LockHolder(pid, kind == fcntl.F_WRLCK)


def process_name(pid: int) -> str | None:
    """What process `pid` runs, as `stockml train` (Linux's /proc), or None if unknown."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [a.decode(errors="replace") for a in argv if a]
    for i, word in enumerate(words):
        if word.endswith(("stockml", "stockml.cli")) and i + 1 < len(words):
            return f"stockml {words[i + 1]}"
    return " ".join(words[:3]) or None
