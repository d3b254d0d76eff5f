"""Errors a user can cause; the CLI catches `StockmlError` once and prints one line.

    StockmlError                 exit_code 2 unless a subclass says otherwise
    ├── InputError               bad flag values, malformed symbols, unknown universe
    ├── StoreError               DuckDB file unusable: unwritable path, locked, not a DB
    ├── NothingToDoError         e.g. nothing to train on (exit 3)
    ├── Interrupted              Ctrl-C, with what was kept and how to resume (exit 130)
    └── IngestIncomplete         some symbols failed; their reasons were listed (exit 4)
        └── BlockedError         the circuit breaker tripped: Yahoo is refusing us (exit 5)

Programming errors are not wrapped: they crash loudly in tests. One condition of the
machine is no programming error whichever library meets it first (DuckDB, polars, a log
write): a full disk. `no_space_message` recognises it so the CLI says one line (exit 2).
Nor is a damaged store file (truncated, a block whose checksum does not match: DuckDB
catches it on read, so no query answers from it): `damaged_store_message`, one line, exit 2.
"""

import errno
import re

_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NO_SPACE_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_DAMAGED_TEXT = (
    "Corrupt database file",
    "Could not read enough bytes from file",
    "is not a valid DuckDB database file",
)


class StockmlError(Exception):
    exit_code = 2


class InputError(StockmlError):
    pass


class StoreError(StockmlError):
    pass


class NothingToDoError(StockmlError):
    exit_code = 3


class Interrupted(StockmlError):
    exit_code = 130


class IngestIncomplete(StockmlError):
    exit_code = 4


class BlockedError(IngestIncomplete):
    exit_code = 5


def no_space_message(exc: BaseException) -> str | None:
    """The one line for an exception caused by a full disk (or file-size limit), anywhere in
    its chain; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        # NumPy's tofile reports a short write without an errno: "4716 requested and 496
        # written", which a regular file only does when its disk is full.
        short = isinstance(current, OSError) and _SHORT_WRITE.fullmatch(text) is not None
        if (
            getattr(current, "errno", None) in _NO_SPACE
            or short
            or any(t in text for t in _NO_SPACE_TEXT)
        ):
            reason = next((t for t in _NO_SPACE_TEXT if t in text), "no space left")
            return (
                f"no room left to write ({reason}): what was committed before is kept; free "
                "some space (or use another --db) and rerun the same command to resume"
            )
        current = current.__cause__ or current.__context__
    return None


def damaged_store_message(exc: BaseException) -> str | None:
    """The one line for an exception DuckDB raised on reading a damaged store file
    (anywhere in its chain); None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip().splitlines()[0] if str(current).strip() else ""
        if any(t in text for t in _DAMAGED_TEXT):
            return (
                f"the store file is damaged ({text[:300]}); DuckDB stopped at it, so no result "
                "came from damaged data: restore a copy of the store, or move it away and rebuild "
                "it with `stockml ingest` into a new --db"
            )
        current = current.__cause__ or current.__context__
    return None
