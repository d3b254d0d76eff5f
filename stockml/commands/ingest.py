"""`stockml ingest`: Yahoo daily bars into the DuckDB store, resumably."""

from __future__ import annotations

from datetime import date
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
        "or a file with one symbol per line, or a CSV/TSV with symbol (and name, sector) "
        "columns.",
    ),
    sectors: Path = typer.Option(
        None,
        "--sectors",
        help="A CSV/TSV with symbol and sector columns giving GICS sectors (first wins: this "
        "file, the universe file's sector column, the built-in universes, the shipped S&P 500 "
        "list). Symbols with none are named in the summary.",
    ),
    start: str = typer.Option(
        None,
        "--start",
        help="First trading day wanted (YYYY-MM-DD, or max for everything Yahoo has; "
        "default: 2000-01-01). About 15 months more are fetched before it so every feature "
        "has its lookback.",
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
    max_response_mb: float = typer.Option(
        DEFAULTS.max_response_bytes / 2**20,
        "--max-response-mb",
        min=0.01,
        help="Largest answer, once decoded, a request may bring (MiB): beyond it the "
        "symbol fails with that reason, read no further.",
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
    recheck_inactive: bool = typer.Option(
        False,
        "--recheck-inactive",
        help="Ask Yahoo again for symbols marked inactive after repeated 404s "
        "(ingest_status.status = 'inactive').",
    ),
) -> None:
    """Download daily bars from Yahoo's chart endpoint into the store; a rerun resumes.

    Exit status: 0 every symbol ok (or inactive: 404 on 3 consecutive runs); 2 bad input or
    unusable store; 4 some symbols failed (listed with reasons); 5 Yahoo blocked the run
    (circuit breaker; progress kept); 130 interrupted (progress kept).
    """
    import os

    from ingest.plan import DEFAULT_START, EARLIEST_START
    from ingest.run import IngestRequest, run_ingest
    from ingest.sectors import plan_sectors, read_sector_file
    from ingest.transport import TRANSPORTS
    from ingest.universe import Universe, parse_symbols, read_universe
    from stockml import store
    from stockml.errors import InputError
    from stockml.logs import configure_logging, log_path_for

    if transport not in ("auto", *TRANSPORTS):
        raise InputError(f"--transport must be auto, aiohttp or curl, not {transport!r}")
    # An empty --symbols is a mistake (an unset shell variable), not "the whole universe".
    chosen = (
        Universe(parse_symbols(symbols), {}) if symbols is not None else read_universe(universe)
    )
    given = read_sector_file(sectors) if sectors is not None else {}
    sector_plan = plan_sectors(chosen.symbols, given, chosen.listings)
    end_day = _parse_date(end, "--end") or date.today()
    if start is not None and start.strip().lower() == "max":
        start_day = EARLIEST_START
    else:
        start_day = _parse_date(start, "--start") or min(DEFAULT_START, end_day)
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
        max_response_bytes=int(max_response_mb * 2**20),
    )
    configure_logging(log_path_for(db))
    store.keep_reading_copy(db)  # what `stockml sql` and `signals` read meanwhile
    run_ingest(
        IngestRequest(
            symbols=chosen.symbols,
            start=start_day,
            end=end_day,
            db_path=db,
            policy=policy,
            progress=not quiet,
            listings=sector_plan.rows,
            recheck_inactive=recheck_inactive,
        )
    )


def register(app: typer.Typer) -> None:
    app.command(
        "ingest", epilog="Example: stockml ingest --symbols AAPL,MSFT,BRK.B --start 2023-01-02"
    )(ingest)
