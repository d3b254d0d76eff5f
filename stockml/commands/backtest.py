"""`stockml backtest`: features and triple-barrier labels for everything in `prices`."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.commands.profile_options import (
    hold_days_option,
    profile_option,
    stop_loss_option,
    take_profit_option,
)
from stockml.store import DEFAULT_DB

# Symbols without a complete feature row listed by name in the summary; the rest counted.
SHOWN_UNCOVERED = 20


def backtest(
    db: Path = typer.Option(
        DEFAULT_DB, "--db", help="DuckDB store (prices in; features, labels out)."
    ),
    profile: str = profile_option(),
    hold_days: int = hold_days_option(),
    take_profit: float = take_profit_option(),
    stop_loss: float = stop_loss_option(),
    memory_limit: str = typer.Option(
        None,
        "--memory-limit",
        help="Memory the refresh may use, e.g. 6G: symbols are computed and written in "
        "chunks sized to it (default: a quarter of RAM).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or summary."),
) -> None:
    """Refresh the sample store: features (see `stockml features`) and the profile's labels,
    incrementally; then print samples per symbol and the class balance. Query the result
    with `stockml sql` (table `labels`, view `samples`)."""
    from backtest.labels import refresh_labels, resolve_profile
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from features.coverage import uncovered_symbols
    from stockml import store
    from stockml.errors import NothingToDoError
    from stockml.logs import configure_logging, log_path_for
    from stockml.output import note, result_console

    store.require_store(db)  # a mistyped --db is an error, not a new empty store
    chosen = resolve_profile(profile, hold_days, take_profit, stop_loss)
    configure_logging(log_path_for(db))
    store.keep_reading_copy(db)  # what `stockml sql` and `signals` read meanwhile
    con = store.connect(db)
    try:
        if not store.prices_fingerprints(con):
            raise NothingToDoError(f"no prices in {db}: run `stockml ingest` first")
        feats = refresh_features(con, progress=not quiet, memory_limit=memory_limit)
        refresh_context(con, progress=not quiet, memory_limit=memory_limit)
        labels = refresh_labels(con, chosen, progress=not quiet, memory_limit=memory_limit)
        balance = store.query_pl(
            con,
            "SELECT count(*) AS samples, count(DISTINCT symbol) AS symbols, "
            "avg((label = 1)::INT) AS win, avg((label = 0)::INT) AS timeout, "
            "avg((label = -1)::INT) AS loss FROM labels WHERE profile = ? AND label IS NOT NULL",
            [chosen.name],
        ).row(0, named=True)
        per_symbol = store.query_pl(
            con,
            "SELECT min(n) AS lo, median(n) AS mid, max(n) AS hi FROM (SELECT count(*) AS n "
            "FROM labels WHERE profile = ? AND label IS NOT NULL GROUP BY symbol)",
            [chosen.name],
        ).row(0, named=True)
        uncovered = uncovered_symbols(con)
    finally:
        store.close(con)
    if not quiet:
        console = result_console()
        console.print(
            f"features: {feats['symbols']} symbols recomputed in {feats['seconds']} s; "
            f"labels ({chosen.name}: {chosen.describe()}): {labels['symbols']} symbols in "
            f"{labels['seconds']} s"
        )
        if balance["samples"]:
            console.print(
                f"{balance['samples']:,} labelled samples over {balance['symbols']} symbols "
                f"(per symbol: min {per_symbol['lo']}, median {per_symbol['mid']:.0f}, "
                f"max {per_symbol['hi']}); win {balance['win']:.1%} · timeout "
                f"{balance['timeout']:.1%} · loss {balance['loss']:.1%}"
            )
        if uncovered:  # a warning, for the person: stderr
            note(f"symbols that give no training sample: {len(uncovered)}")
            for item in uncovered[:SHOWN_UNCOVERED]:
                note(f"  {item.reason()}")
            if len(uncovered) > SHOWN_UNCOVERED:
                note(f"  ... and {len(uncovered) - SHOWN_UNCOVERED} more")


def register(app: typer.Typer) -> None:
    app.command("backtest", epilog="Example: stockml backtest --profile options --hold-days 7")(
        backtest
    )
