"""structlog configuration: JSON events, one per line, in a file beside the store.

Configured in one place (the CLI, or a Ray worker at start); modules only call
`structlog.get_logger()` and log key-value events.
"""

from __future__ import annotations

import logging
from pathlib import Path

import structlog

from stockml.errors import StoreError


def log_path_for(db_path: Path) -> Path:
    """The log lives beside the DuckDB file: data/stockml.duckdb -> data/stockml.log."""
    return db_path.with_suffix(".log")


def configure_logging(log_file: Path | None) -> None:
    """Send JSON events to `log_file` (appending), or drop them when None."""
    if log_file is None:
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=structlog.ReturnLoggerFactory(),
            cache_logger_on_first_use=False,
        )
        return
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = log_file.open("a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot create the folder for {log_file}: {exc.strerror}") from exc
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=handle),
        cache_logger_on_first_use=False,
    )
