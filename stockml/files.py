"""Atomic file writes: a reader (or a rerun after kill -9) sees the old file or the new
one, never half of one. The one implementation every stage uses."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, flush it to disk, then rename
    it over `path` (atomic on POSIX). Returns `path`. The temporary file keeps the real
    suffix last (`name.<pid>-<random>.tmp.png`), so writers that infer a format from it
    still work, and is unique to this call, so two writers of the same file (a rerun
    beside a process that has not died yet) never rename each other's half-written file."""
    temp = path.with_name(f"{path.stem}.{os.getpid()}-{os.urandom(4).hex()}.tmp{path.suffix}")
    try:
        with temp.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
