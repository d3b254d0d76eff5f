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
    runs: Path = typer.Option(
        None,
        "--runs",
        help="The runs folder whose plots the pages show (default: runs/ beside the store, "
        "where `stockml train` writes); nothing outside it is read.",
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="Also answer requests for this host name (repeatable; *.example.com allowed); "
        "by default only the names of --host (127.0.0.1: 127.0.0.1, localhost, [::1]).",
    ),
) -> None:
    """Serve the ML Signals page: today's signals per profile, each symbol's chart, past
    signals and why today's was given, training run reports and ingest status. Reads a
    private copy of the store, so `stockml ingest` and `stockml train` keep working."""
    from stockml import store
    from stockml.logs import configure_logging
    from stockml.web.server import serve_forever, server_log

    store.require_store(db)  # one line, and no log folder made for a mistyped --db
    log = server_log(db)
    configure_logging(log)
    serve_forever(db, host, port, runs=runs, allow_hosts=allow_host, log=log)


def register(app: typer.Typer) -> None:
    app.command("serve", epilog="Example: stockml serve --db data/demo.duckdb --port 8000")(serve)
