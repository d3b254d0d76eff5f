"""`stockml signals`: BUY CALL / BUY PUT / HOLD for the newest day of every stock."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def signals(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store with a training run."),
    run: str = typer.Option(None, "--run", help="Training run id (default: the newest run)."),
    profile: str = typer.Option(
        None,
        "--profile",
        help="Use the newest run of this label profile (swing, options; default: any).",
    ),
    out: Path = typer.Option(None, "--out", help="Also write the signals to a .csv or .json file."),
) -> None:
    """Score each stock's newest complete day with a run's live signal model: BUY CALL when
    p_win reaches the call threshold, BUY PUT when p_loss reaches the put threshold (both
    chosen on the training period), HOLD otherwise; with what each signal type achieved in
    the walk-forward evaluation. Stored in the `signals` table too."""
    import polars as pl
    from rich.table import Table

    from stockml.errors import InputError
    from stockml.progress import console
    from training.signals import latest_signals

    if out is not None and out.suffix not in (".csv", ".json"):
        raise InputError("--out must end in .csv or .json")
    result = latest_signals(db, run, profile)
    frame = result.frame
    if out is not None:
        if out.suffix == ".csv":
            frame.write_csv(out)
        else:
            frame.write_json(out)
    table = Table(title=f"signals of run {frame['run_id'][0]}")
    for name in ("symbol", "date", "signal", "p_win", "p_timeout", "p_loss", "threshold"):
        table.add_column(name)
    order = frame.with_columns(rank=pl.when(pl.col("signal") == "HOLD").then(1).otherwise(0)).sort(
        "rank", "p_win", descending=[False, True]
    )
    for row in order.iter_rows(named=True):
        table.add_row(
            row["symbol"],
            str(row["date"]),
            row["signal"],
            f"{row['p_win']:.3f}",
            f"{row['p_timeout']:.3f}",
            f"{row['p_loss']:.3f}",
            "" if row["threshold"] != row["threshold"] else f"{row['threshold']:.3f}",
        )
    console.print(table)
    counts = frame["signal"].value_counts().sort("signal")
    console.print(", ".join(f"{r['signal']}: {r['count']}" for r in counts.iter_rows(named=True)))
    for line in result.summary():
        console.print(line)


def register(app: typer.Typer) -> None:
    app.command("signals")(signals)
