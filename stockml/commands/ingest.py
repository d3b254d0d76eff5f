"""`stockml ingest`: Yahoo daily bars into the DuckDB store, resumably."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import typer

from ingest.policy import FetchPolicy
from stockml.store import DEFAULT_DB

# The production defaults, shown in --help; FetchPolicy is their one home.
DEFAULTS = FetchPolicy()


def _parse_date(text: str | None, flag: str) -> date | None:
    from stockml.errors import InputError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None


def ingest(
    symbols: str = typer.Option(
        None,
        "--symbols",
        help="Comma-separated tickers, Yahoo's spelling: exchange suffixes stay as typed "
        "(BARC.L, SAP.DE, 7203.T, ABX.V); a US class share letter takes a dash (BRK.B is "
        "read as BRK-B; type XYZ-V for a class whose letter is an exchange code: F, L, T, V). "
        "Overrides --universe.",
    ),
    universe: str = typer.Option(
        "full",
        "--universe",
        help="Built-in universe (full = 82 stocks, all 11 GICS sectors; quick = 20 of them) "
        "or a file with one symbol per line.",
    ),
    start: str = typer.Option(
        None,
        "--start",
        help="First trading day wanted (YYYY-MM-DD; default: 2 years before --end). "
        "About 15 months more are fetched before it so every feature has its lookback.",
    ),
    end: str = typer.Option(
        None,
        "--end",
        help="Last trading day wanted, inclusive, in each exchange's own calendar "
        "(default: today; today's bar is only stored once that exchange's session is final).",
    ),
    base_url: str = typer.Option(
        DEFAULTS.base_url,
        "--base-url",
        help="Chart server (Yahoo, or `stockml serve-yahoo`).",
    ),
    rate: float = typer.Option(
        DEFAULTS.rate,
        "--rate",
        min=0.01,
        help="Requests started per second, at most, retries included: any one-second "
        "window holds at most this many (whole number; below 1, one request per 1/rate s).",
    ),
    concurrency: int = typer.Option(
        DEFAULTS.concurrency, "--concurrency", min=1, max=64, help="Requests in flight, at most."
    ),
    timeout: float = typer.Option(
        DEFAULTS.timeout,
        "--timeout",
        min=0.1,
        help="Hard total seconds per request: connect, headers and body.",
    ),
    retries: int = typer.Option(
        DEFAULTS.retries,
        "--retries",
        min=0,
        max=20,
        help="Retries per request after 429, 5xx, timeouts, resets, bad bodies.",
    ),
    transport: str = typer.Option(
        DEFAULTS.transport,
        "--transport",
        help="HTTP client: auto (start with the one that last worked, switch once "
        "if Yahoo blocks it), aiohttp, or curl (browser impersonation).",
    ),
    proxy: str = typer.Option(
        None,
        "--proxy",
        help="HTTP(S) proxy URL for every request (default: $HTTPS_PROXY / $HTTP_PROXY).",
    ),
    db: Path = typer.Option(
        DEFAULT_DB, "--db", help="DuckDB store; the JSON log goes beside it (.log)."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", help="No progress bar or summary (errors still print)."
    ),
) -> None:
    """Download daily bars from Yahoo's chart endpoint into the store; a rerun resumes.

    Exit status: 0 every symbol ok; 2 bad input or unusable store; 4 some symbols failed
    (listed with reasons); 5 Yahoo blocked the run (circuit breaker; progress kept);
    130 interrupted (progress kept).
    """
    import os

    from ingest.plan import DEFAULT_HISTORY_DAYS
    from ingest.run import IngestRequest, run_ingest
    from ingest.transport import TRANSPORTS
    from ingest.universe import listing_rows, parse_symbols, resolve_universe
    from stockml.errors import InputError
    from stockml.logs import configure_logging, log_path_for

    if transport not in ("auto", *TRANSPORTS):
        raise InputError(f"--transport must be auto, aiohttp or curl, not {transport!r}")
    wanted = parse_symbols(symbols) if symbols else resolve_universe(universe)
    end_day = _parse_date(end, "--end") or date.today()
    start_day = _parse_date(start, "--start") or end_day - timedelta(days=DEFAULT_HISTORY_DAYS)
    if proxy is None:
        scheme_var = "HTTPS_PROXY" if base_url.startswith("https") else "HTTP_PROXY"
        proxy = os.environ.get(scheme_var) or os.environ.get(scheme_var.lower()) or None
    policy = FetchPolicy(
        base_url=base_url,
        rate=rate,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        transport=transport,
        proxy=proxy,
    )
    configure_logging(log_path_for(db))
    run_ingest(
        IngestRequest(
            symbols=wanted,
            start=start_day,
            end=end_day,
            db_path=db,
            policy=policy,
            progress=not quiet,
            listings=listing_rows(),
        )
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
