"""`stockml demo`: the whole pipeline offline, against the built-in simulated market."""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_DB = Path("data/demo.duckdb")
# A few transient faults so the demo shows the client recovering, as it must on Yahoo.
DEMO_FAULTS = "AAPL=429*2;MSFT=500;JPM=truncated;XOM=reset"
# The local server has no rate limiter and answers in milliseconds: the demo runs faster
# and cuts a stalled request sooner than Yahoo's defaults would (FetchPolicy's otherwise).
DEMO_RATE = 25.0
DEMO_TIMEOUT = 10.0


def demo(
    db: Path = typer.Option(
        DEMO_DB, "--db", help="DuckDB store for the demo (kept apart from real data)."
    ),
    universe: str = typer.Option(
        "full", "--universe", help="Built-in universe: full (82) or quick (20)."
    ),
    rate: float = typer.Option(
        DEMO_RATE, "--rate", help="Requests per second against the local server."
    ),
    seed: int = typer.Option(
        7, "--seed", help="Simulator seed: the same seed gives the same market."
    ),
    train: bool = typer.Option(
        True,
        "--train/--no-train",
        help="Also train the eight models and print signals (~3 min on 2 cores).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or tables."),
) -> None:
    """Start the Yahoo-compatible server on the seeded simulator and run the real pipeline
    against it: ingest (with a few injected faults to recover from), the backtest (features
    and swing labels), training on Ray with the honest date split, and today's signals."""
    from datetime import date, timedelta

    from ingest.plan import DEFAULT_HISTORY_DAYS, last_closed_day
    from ingest.policy import FetchPolicy
    from ingest.run import IngestRequest, run_ingest
    from ingest.server import FaultPlan, MarketData, ServerThread, YahooServer
    from ingest.universe import listing_rows, resolve_universe
    from stockml.defaults import DEFAULT_PROFILE
    from stockml.logs import configure_logging, log_path_for
    from stockml.progress import console

    configure_logging(log_path_for(db))
    symbols = resolve_universe(universe)
    today = date.today()
    with console.status(f"simulating a market of {len(listing_rows())} stocks (seed {seed})…"):
        market = MarketData.from_simulator(listing_rows(), today, seed)
    end = last_closed_day(today)
    start = end - timedelta(days=DEFAULT_HISTORY_DAYS)
    with ServerThread(YahooServer(market, FaultPlan.parse(DEMO_FAULTS))) as server:
        if not quiet:
            console.rule(
                f"[bold]1. ingest[/] {len(symbols)} symbols from the simulator at {server.base_url}"
            )
        run_ingest(
            IngestRequest(
                symbols=symbols,
                start=start,
                end=end,
                db_path=db,
                policy=FetchPolicy(base_url=server.base_url, rate=rate, timeout=DEMO_TIMEOUT),
                progress=not quiet,
                listings=listing_rows(),
            )
        )
    from backtest.labels import PROFILES, refresh_labels
    from features.compute import refresh_features
    from stockml import store

    if not quiet:
        console.rule("[bold]2. backtest[/] 179 features and 14-day triple-barrier labels")
    con = store.connect(db)
    try:
        refresh_features(con, progress=not quiet)
        refresh_labels(con, PROFILES[DEFAULT_PROFILE], progress=not quiet)
        balance = store.query_pl(
            con,
            "SELECT s.sector, count(*) AS samples, round(avg((l.label = 1)::INT), 3) AS win, "
            "round(avg((l.label = 0)::INT), 3) AS timeout, round(avg((l.label = -1)::INT), 3) "
            "AS loss FROM labels l JOIN symbols s USING (symbol) WHERE l.profile = ? "
            "AND l.label IS NOT NULL GROUP BY s.sector ORDER BY s.sector",
            [DEFAULT_PROFILE],
        )
    finally:
        con.close()
    if not quiet:
        from rich.table import Table

        table = Table(title=f"{DEFAULT_PROFILE} labels per sector (query it: stockml sql --db ...)")
        for name in balance.columns:
            table.add_column(name)
        for row in balance.iter_rows():
            table.add_row(*(str(v) for v in row))
        console.print(table)
    if train:
        from stockml.commands.train import print_summary
        from training.pipeline import run_training
        from training.signals import latest_signals

        if not quiet:
            console.rule("[bold]3. train[/] eight models on Ray, walk-forward over 4 test windows")
        result = run_training(db, DEFAULT_PROFILE, progress=not quiet)
        signals = latest_signals(db, result.run_id)
        if not quiet:
            print_summary(console, result)
            console.rule("[bold]4. signals[/] for the newest day")
            counts = signals.frame.group_by("signal").len().sort("signal")
            console.print(", ".join(f"{s}: {n}" for s, n in counts.iter_rows()))
            for line in signals.summary():
                console.print(line)
    if not quiet:
        console.print(f"[green]demo store ready:[/] {db} (log: {log_path_for(db)})")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
