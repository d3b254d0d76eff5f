"""`stockml features`: compute the 179 catalog features for everything in `prices`, then the
market, sector and cross-sectional context columns (features/context.csv)."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def features(
    db: Path = typer.Option(
        DEFAULT_DB, "--db", help="DuckDB store to read prices from and write features to."
    ),
    memory_limit: str = typer.Option(
        None,
        "--memory-limit",
        help="Memory the refresh may use, e.g. 6G: symbols are computed and written in "
        "chunks sized to it (default: a quarter of RAM).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
) -> None:
    """Bring the `features` table up to date: only symbols whose prices changed are
    recomputed, each from its first stored bar (indicators with an unstable period depend
    on where the series starts)."""
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from stockml import store
    from stockml.errors import NothingToDoError
    from stockml.logs import configure_logging, log_path_for
    from stockml.output import result_console

    store.require_store(db)  # a mistyped --db is an error, not a new empty store
    configure_logging(log_path_for(db))
    store.keep_reading_copy(db)  # what `stockml sql` and `signals` read meanwhile
    con = store.connect(db)
    try:
        if not store.prices_fingerprints(con):
            raise NothingToDoError(f"no prices in {db}: run `stockml ingest` first")
        summary = refresh_features(con, progress=not quiet, memory_limit=memory_limit)
        refresh_context(con, progress=not quiet, memory_limit=memory_limit)
    finally:
        store.close(con)
    if not quiet:
        result_console().print(
            f"features: {summary['symbols']} symbols recomputed ({summary['rows']:,} rows), "
            f"{summary['up_to_date']} up to date, {summary['removed']} removed, "
            f"in {summary['seconds']} s"
        )


def register(app: typer.Typer) -> None:
    app.command("features", epilog="Example: stockml features --memory-limit 4G")(features)
