"""The fetch policy: every knob of the chart client, and the one home of its defaults.

A frozen value built once per run (by the CLI, the demo or a test) and passed in, as
httpx's `Timeout`/`Limits` are. It lives apart from `ingest.client` so the CLI can show
these defaults in `--help` without importing the HTTP stack.
"""

from __future__ import annotations

from dataclasses import dataclass

YAHOO_BASE_URL = "https://query1.finance.yahoo.com"


@dataclass(frozen=True)
class FetchPolicy:
    """Every knob of the client; the defaults are conservative for Yahoo."""

    base_url: str = YAHOO_BASE_URL
    rate: float = 1.0  # requests started per second: public clients hold ~1/s unblocked
    concurrency: int = 4  # requests in flight
    timeout: float = 20.0  # hard total seconds per request: connect, headers and body
    retries: int = 3  # after 429, 5xx, timeouts, resets, unparseable bodies
    backoff_base: float = 1.0  # seconds; doubled per retry, with jitter
    backoff_cap: float = 30.0
    breaker_after: int = 8  # consecutive 429s that stop the run
    switch_after: int = 3  # block-page answers before `auto` switches transport
    transport: str = "auto"  # auto, aiohttp or curl
    proxy: str | None = None
    # Decoded bytes one answer may bring: a chart of 25 years is under 1 MB; a proxy, a
    # captive portal or a wrong --base-url can send a 1 MB gzip that inflates to 1 GB.
    max_response_bytes: int = 32 * 2**20
