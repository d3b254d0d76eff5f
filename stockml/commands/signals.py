"""`stockml signals`: BUY CALL / BUY PUT / HOLD for the newest day of every stock."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.output import FORMAT_HELP
from stockml.store import DEFAULT_DB
from stockml.store.schema import SIGNAL_CONTRACT_COLUMNS

# The columns printed, in order; `--out` writes every column of the signals frame.
# BUY rows carry their suggested contract (training/contracts.py); HOLD rows leave it empty.
SHOWN = (
    "symbol",
    "date",
    "signal",
    "p_win",
    "p_loss",
    *SIGNAL_CONTRACT_COLUMNS,
    "stale",
)
EXAMPLE = "Example: stockml signals --profile options 2>/dev/null | grep 'BUY CALL'"


def signals(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store with a training run."),
    run: str = typer.Option(None, "--run", help="Training run id (default: the newest run)."),
    profile: str = typer.Option(
        None,
        "--profile",
        help="Use the newest run of this label profile (swing, options; default: any).",
    ),
    symbols: str = typer.Option(
        None,
        "--symbols",
        help="Comma-separated symbols to score (the traded universe; default: every stored "
        "symbol with a complete feature row).",
    ),
    fmt: str = typer.Option(None, "--format", help=FORMAT_HELP, show_default=False),
    out: Path = typer.Option(None, "--out", help="Also write the signals to a .csv or .json file."),
) -> None:
    """Score each stock's newest complete day with a run's live signal model: BUY CALL when
    p_win - p_loss reaches the call rule's threshold, BUY PUT when p_loss - p_win reaches
    the put rule's (both chosen on the training period by what their trades earned after
    costs; a side whose rule lost money there is off and gives no signal), HOLD otherwise.
    Each BUY comes with the contract to buy at the next open (strike, expiry, premium) and
    the underlying's target, stop and last exit day. The signals go to stdout (calls and
    puts first), each symbol on its own newest day, with `stale` saying why one is not
    today's to act on (its bars go on past it, or none came for days); which side is off,
    which symbols are inactive, and what each side's placed trades achieved in the
    walk-forward, go to stderr. Stored in the `signals` table too, except while another
    stockml process writes the store: then they are scored on the store as it was before
    that write began, and the table is left as it is."""
    import polars as pl

    from stockml import store
    from stockml.errors import InputError
    from stockml.logs import configure_logging, log_path_for
    from stockml.output import check_format, note, write_frame

    fmt = check_format(fmt)
    if out is not None and out.suffix not in (".csv", ".json"):
        raise InputError("--out must end in .csv or .json")
    store.require_store(db)
    configure_logging(log_path_for(db))
    from stockml.commands.train import parse_symbols

    chosen = parse_symbols(symbols, "--symbols")
    result = score(db, run, profile, list(chosen) if chosen else None)
    from stockml.freshness import last_closed, with_stale

    frame = with_stale(result.frame, result.newest_bar, last_closed())
    if out is not None:
        if out.suffix == ".csv":
            frame.write_csv(out)
        else:
            frame.write_json(out)
    shown = (
        frame.with_columns(rank=pl.when(pl.col("signal") == "HOLD").then(1).otherwise(0))
        .sort("rank", "p_win", descending=[False, True])
        .select(SHOWN)
        .with_columns(pl.col("p_win", "p_loss").round(3), pl.col("close", "strike").round(2))
        .with_columns(pl.col("premium", "target_price", "stop_price").round(2))
    )
    write_frame(shown, fmt, title=f"signals of run {frame['run_id'][0]}")
    counts = frame["signal"].value_counts().sort("signal")
    note(", ".join(f"{r['signal']}: {r['count']}" for r in counts.iter_rows(named=True)))
    stale = frame.filter(pl.col("stale").is_not_null())
    if stale.height:
        reasons = stale["stale"].unique().sort().to_list()
        note(
            f"{stale.height} of {frame.height} signals are stale, not today's to act on "
            f"(column stale): {reasons[0]}"
            + (f"; and {len(reasons) - 1} more" if reasons[1:] else "")
        )
    for line in result.summary():
        note(line)
    if out is not None:
        note(f"{frame.height} signals written to {out}")


def score(db: Path, run: str | None, profile: str | None, symbols: list[str] | None = None):
    """`latest_signals` on the store, or, while another process writes it, on a private
    copy of its reading copy (said on stderr: the store's `signals` table is not updated)."""
    from stockml import store
    from stockml.errors import StoreError
    from stockml.output import note
    from stockml.store.locks import lock_holder
    from training.signals import latest_signals

    holder = lock_holder(db)
    if holder is None or not holder.writing:
        try:
            return latest_signals(db, run, profile, symbols)
        except StoreError:
            holder = lock_holder(db)
            if holder is None or not holder.writing:
                raise
    with store.private_copy(db) as (copy, reading):
        if not reading.live:
            note(
                f"{reading.moment(db)}; the store's signals table was not updated: rerun "
                "`stockml signals` once that write ends to store them"
            )
        return latest_signals(copy, run, profile, symbols)


def register(app: typer.Typer) -> None:
    app.command("signals", epilog=EXAMPLE)(signals)
