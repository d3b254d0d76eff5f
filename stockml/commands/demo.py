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
# --scale: 20 years by default (~25 M bars at 5,000 symbols) and training on a
# date-stratified sample (training/sampling.py) that fits in memory with the models' copies
# and in a sitting: at 200,000 the 136 fits took over an hour on 2 cores (a random forest
# 69 s on 122 k rows), at 50,000 about a quarter of that.
SCALE_YEARS = 20.0
SCALE_MAX_SAMPLES = 50_000
# The demo's years of history (issue 23): the simulator serves them plus the features'
# warm-up, so a yearly walk-forward has 9 yearly test windows with 3 years of training before
# the first (12 years of labelled days). Ingest, features and labels of 82 x 12 years take
# seconds; training all of it would not fit the demo's 3 minutes, so until training takes
# a sample of its own the demo trains on DEMO_MAX_SAMPLES labelled days (about what 82
# stocks x 2 years gave before), drawn evenly over the years (training/sampling.py).
DEMO_YEARS = 12.0
DEMO_MAX_SAMPLES = 20_000


def demo(
    db: Path = typer.Option(
        DEMO_DB, "--db", help="DuckDB store for the demo (kept apart from real data)."
    ),
    universe: str = typer.Option(
        "full", "--universe", help="Built-in universe: full (82) or quick (20)."
    ),
    rate: float = typer.Option(
        None,
        "--rate",
        help=f"Requests per second against the local server (default {DEMO_RATE:g}; with "
        "--scale, unlimited: the server's own rate).",
    ),
    seed: int = typer.Option(
        7, "--seed", help="Simulator seed: the same seed gives the same market."
    ),
    scale: int = typer.Option(
        0,
        "--scale",
        help="Simulate this many synthetic stocks instead of the built-in universe "
        "(market scale: e.g. 5000; features, context and labels in chunks sized to "
        "--memory-limit).",
    ),
    years: float = typer.Option(
        None,
        "--years",
        help=f"Years of history (default {DEMO_YEARS:g}; with --scale, {SCALE_YEARS:g}).",
    ),
    memory_limit: str = typer.Option(
        None,
        "--memory-limit",
        help="Memory features, context, labels and training's reads may use, e.g. 6G "
        "(default: a quarter of RAM).",
    ),
    max_samples: int = typer.Option(
        None,
        "--max-samples",
        help="Train on a date-stratified sample of about this many labelled days (each day "
        "keeps its share, rounded up) "
        f"(default {DEMO_MAX_SAMPLES:,}; with --scale, {SCALE_MAX_SAMPLES:,}).",
    ),
    train: bool = typer.Option(
        True,
        "--train/--no-train",
        help="Also train the eight base models on Ray (walk-forward, then the live model) "
        "and print the newest day's signals.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or tables."),
    serve: bool = typer.Option(
        False, "--serve", help="End by serving the ML Signals page (127.0.0.1:5000) on the store."
    ),
) -> None:
    """Start the Yahoo-compatible server on the seeded simulator and run the real pipeline
    against it: ingest (with a few injected faults to recover from), the backtest (features
    and swing labels), walk-forward training on Ray, and the newest day's signals. Results
    (the labels per sector, the pooled walk-forward table, the signals) go to stdout,
    progress to stderr and the JSON log beside the store."""
    import json
    import math
    from datetime import date

    from ingest.plan import fetch_start_for, last_closed_day
    from ingest.policy import FetchPolicy
    from ingest.run import IngestRequest, run_ingest
    from ingest.server import FaultPlan, MarketData, ServerThread, YahooServer
    from ingest.simulate import SIM_START
    from ingest.simulated import history_start, scale_listings
    from ingest.universe import listing_rows, resolve_universe
    from stockml.defaults import DEFAULT_PROFILE
    from stockml.errors import InputError
    from stockml.logs import configure_logging, log_path_for
    from stockml.memory import MemoryBudget, RssWatch
    from stockml.output import result_console, write_frame
    from stockml.progress import console

    if scale < 0 or (max_samples is not None and max_samples < 1):
        raise InputError("--scale must be 0 or more and --max-samples at least 1")
    MemoryBudget.of(memory_limit)  # a bad --memory-limit fails now, not after the ingest
    watch = RssWatch().start() if scale else None
    configure_logging(log_path_for(db))
    listings = scale_listings(scale) if scale else listing_rows()
    symbols = [s for s, _, _ in listings] if scale else resolve_universe(universe)
    today = date.today()
    end = last_closed_day(today)
    if years is None:
        years = SCALE_YEARS if scale else DEMO_YEARS
    start = history_start(end, years)
    # --scale: `years` of bars in all (its benchmarks' market); else years of features,
    # with the warm-up served before them.
    served_from = start if scale else fetch_start_for(start)
    if scale:
        rate = math.inf if rate is None else rate
        max_samples = SCALE_MAX_SAMPLES if max_samples is None else max_samples
    elif max_samples is None:
        max_samples = DEMO_MAX_SAMPLES
    results = result_console()
    if not quiet:
        console.print(f"simulating a market of {len(listings)} stocks (seed {seed})…")
    market = MarketData.from_simulator(listings, today, seed, min(SIM_START, served_from))
    faults = FaultPlan() if scale else FaultPlan.parse(DEMO_FAULTS)
    with ServerThread(YahooServer(market, faults)) as server:
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
                policy=FetchPolicy(
                    base_url=server.base_url, rate=rate or DEMO_RATE, timeout=DEMO_TIMEOUT
                ),
                progress=not quiet,
                listings=listings,
            )
        )
    del market, server  # the served market (1.8 GB at 5,000 x 20 y) is in the store now
    from backtest.labels import PROFILES, refresh_labels
    from features.compute import refresh_features
    from features.context_refresh import refresh_context
    from stockml import store

    if not quiet:
        console.rule(
            "[bold]2. backtest[/] 179 features, market context and 14-day triple-barrier labels"
        )
    store.keep_reading_copy(db)  # what `stockml sql` and `signals` read meanwhile
    con = store.connect(db)
    try:
        refresh_features(con, progress=not quiet, memory_limit=memory_limit)
        refresh_context(con, progress=not quiet, memory_limit=memory_limit)
        refresh_labels(
            con, PROFILES[DEFAULT_PROFILE], progress=not quiet, memory_limit=memory_limit
        )
        balance = store.query_pl(
            con,
            "SELECT s.sector, count(*) AS samples, round(avg((l.label = 1)::INT), 3) AS win, "
            "round(avg((l.label = 0)::INT), 3) AS timeout, round(avg((l.label = -1)::INT), 3) "
            "AS loss FROM labels l JOIN symbols s USING (symbol) WHERE l.profile = ? "
            "AND l.label IS NOT NULL GROUP BY s.sector ORDER BY s.sector",
            [DEFAULT_PROFILE],
        )
    finally:
        store.close(con)
    if not quiet:
        title = f"{DEFAULT_PROFILE} labels per sector (query it: stockml sql --db {db} ...)"
        write_frame(balance, "table", title=title)
    if train:
        from stockml.commands.train import print_summary
        from training.config import TrainConfig
        from training.pipeline import run_training
        from training.signals import latest_signals

        if not quiet:
            console.rule(
                "[bold]3. train[/] eight models on Ray, walk-forward over yearly test windows"
            )
        store.keep_reading_copy(db)
        config = TrainConfig.create(DEFAULT_PROFILE, max_samples=max_samples)
        result = run_training(db, config, progress=not quiet, memory_limit=memory_limit)
        signals = latest_signals(db, result.run_id)
        if not quiet:
            print_summary(results, result, console)
            console.rule("[bold]4. signals[/] for the newest day (all of them: stockml signals)")
            counts = signals.frame.group_by("signal").len().sort("signal")
            results.print(", ".join(f"{s}: {n}" for s, n in counts.iter_rows()))
            for line in signals.summary():
                results.print(line)
    if watch is not None:
        if train:
            con = store.connect(db)
            try:
                row = con.execute(
                    "SELECT params FROM training_runs WHERE run_id = ?", [result.run_id]
                ).fetchone()
            finally:
                con.close()
            params = json.loads(row[0])
            console.print(
                f"trained on a date-stratified sample of {params.get('samples', 'all'):,} "
                f"labelled stock-days (asked: {max_samples:,}; each day's share is rounded up)"
            )
        console.print(
            "peak resident memory (this process and its children, Ray's included): "
            f"{watch.stop() / 2**30:.2f} GiB"
        )
    if not quiet:
        console.print(f"[green]demo store ready:[/] {db} (log: {log_path_for(db)})")
    if serve:
        from stockml.web.server import serve_forever

        serve_forever(db)


def register(app: typer.Typer) -> None:
    app.command("demo", epilog="Example: stockml demo --universe quick --serve")(demo)
