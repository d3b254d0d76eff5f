"""Errors a user can cause; the CLI catches `StockmlError` once and prints one line.

    StockmlError                 exit_code 2 unless a subclass says otherwise
    ├── InputError               bad flag values, malformed symbols, unknown universe
    ├── StoreError               DuckDB file unusable: unwritable path, locked, not a DB
    ├── NothingToDoError         e.g. nothing to train on (exit 3)
    └── IngestIncomplete         some symbols failed; their reasons were listed (exit 4)
        └── BlockedError         the circuit breaker tripped: Yahoo is refusing us (exit 5)

Programming errors are not wrapped: they crash loudly in tests.
"""


class StockmlError(Exception):
    exit_code = 2


class InputError(StockmlError):
    pass


class StoreError(StockmlError):
    pass


class NothingToDoError(StockmlError):
    exit_code = 3


class IngestIncomplete(StockmlError):
    exit_code = 4


class BlockedError(IngestIncomplete):
    exit_code = 5
