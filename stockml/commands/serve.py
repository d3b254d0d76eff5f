"""`stockml serve-yahoo`: the Yahoo-compatible chart server, for tests and offline use."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer


def serve_yahoo(
    source: str = typer.Option(
        "simulator",
        "--source",
        help="`simulator` (seeded market) or a parquet file such as "
        "../shared/data/sp500_daily.parquet.",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (loopback by default)."
    ),
    port: int = typer.Option(8765, "--port", help="Port to listen on (0 picks a free one)."),
    seed: int = typer.Option(
        7, "--seed", help="Simulator seed: the same seed serves the same market."
    ),
    as_of: str = typer.Option(
        None, "--as-of", help="Simulator: serve the market as of this day (default today)."
    ),
    rate_limit: float = typer.Option(
        None, "--rate-limit", help="Answer 429 (text/html) beyond this many requests per second."
    ),
    latency: float = typer.Option(
        0.0, "--latency", help="Seconds to wait before answering each request."
    ),
    faults: str = typer.Option(
        "",
        "--faults",
        help="Fault plan, e.g. 'AAPL=429*3;MSFT=hang;XOM=nulls*'. Kinds: 429 429ra hang drip "
        "500 chart_null reset truncated html nulls dup_last unknown empty; "
        "kind*N = N requests, kind* = always.",
    ),
    fault_rate: float = typer.Option(
        0.0, "--fault-rate", help="Give this fraction of symbols one random transient fault."
    ),
    block_plain: bool = typer.Option(
        False,
        "--block-plain",
        help="429 every request lacking Chrome's client hints, like Yahoo's TLS check.",
    ),
    drip_interval: float = typer.Option(
        1.0, "--drip-interval", help="Seconds between bytes for the `drip` fault."
    ),
) -> None:
    """Serve Yahoo's chart endpoint (/v8/finance/chart/SYMBOL) from real data or the simulator."""
    from aiohttp import web

    from ingest.server import FaultPlan, MarketData, YahooServer
    from ingest.universe import listing_rows
    from stockml.errors import InputError

    if source == "simulator":
        day = date.fromisoformat(as_of) if as_of else date.today()
        data = MarketData.from_simulator(listing_rows(), day, seed)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"--source {source!r}: no such parquet file")
        data = MarketData.from_parquet(path)
    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise InputError(f"--faults: {exc}") from None
    if fault_rate:
        extra = FaultPlan.random(sorted(data.series), fault_rate, seed)
        for symbol, queue in extra.queues.items():
            plan.queues.setdefault(symbol, []).extend(queue)
    server = YahooServer(data, plan, rate_limit, latency, block_plain, drip_interval)
    print(f"serving {len(data.series)} symbols on http://{host}:{port} (Ctrl-C stops)", flush=True)
    web.run_app(server.app, host=host, port=port, print=None, access_log=None)


def register(app: typer.Typer) -> None:
    app.command(
        "serve-yahoo",
        epilog="Example: stockml serve-yahoo --port 8765 --faults 'AAPL=429*3;MSFT=hang'",
    )(serve_yahoo)
