"""`stockml serve`: the ML Signals page in a browser, read-only over the store."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def serve(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store to show (only read)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (loopback by default: this machine)."
    ),
    port: int = typer.Option(5000, "--port", help="Port to listen on (0 picks a free one)."),
) -> None:
    """Serve the ML Signals page: today's signals per profile, each symbol's chart, past
    signals and why today's was given, training run reports and ingest status. Reads a
    private copy of the store, so `stockml ingest` and `stockml train` keep working."""
    from stockml.logs import configure_logging, log_path_for
    from stockml.web.app import serve_forever

    configure_logging(log_path_for(db))
    serve_forever(db, host, port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
