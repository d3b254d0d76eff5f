"""`stockml signals`: BUY CALL / BUY PUT / HOLD for the newest day of every stock."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def signals(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store with a training run."),
    run: str = typer.Option(None, "--run", help="Training run id (default: the newest run)."),
    out: Path = typer.Option(None, "--out", help="Also write the signals to a .csv or .json file."),
) -> None:
    """Score each stock's newest complete day with a run's stacked models: BUY CALL (win
    most likely), BUY PUT (loss most likely) or HOLD, with the probabilities. Stored in the
    `signals` table too."""
    from rich.table import Table

    from stockml.errors import InputError
    from stockml.progress import console
    from training.signals import latest_signals

    if out is not None and out.suffix not in (".csv", ".json"):
        raise InputError("--out must end in .csv or .json")
    frame = latest_signals(db, run)
    if out is not None:
        if out.suffix == ".csv":
            frame.write_csv(out)
        else:
            frame.write_json(out)
    table = Table(title=f"signals of run {frame['run_id'][0]}")
    for name in ("symbol", "date", "signal", "p_win", "p_timeout", "p_loss"):
        table.add_column(name)
    for row in frame.sort("p_win", descending=True).iter_rows(named=True):
        table.add_row(
            row["symbol"],
            str(row["date"]),
            row["signal"],
            f"{row['p_win']:.2f}",
            f"{row['p_timeout']:.2f}",
            f"{row['p_loss']:.2f}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("signals")(signals)
