"""The run's outcome as the user sees it: the summary tables and the documented exit status.

    0    every requested symbol ok, up to date, or inactive
    4    some symbols failed (`IngestIncomplete`, listed with their reasons)
    5    Yahoo kept answering 429 and the circuit breaker stopped the run (`BlockedError`)
(2 and 130, bad input and Ctrl-C, are raised before or around the run: `ingest.run`.)
Each line said here is also an event in the JSON log, written by the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.fetch import SymbolResult
from stockml.errors import BlockedError, IngestIncomplete
from stockml.progress import console


@dataclass
class IngestResult:
    results: dict[str, SymbolResult]
    elapsed: float
    requests: int
    retries: int
    throttled: int
    timeouts: int
    transports: list[str]
    start_rate: float = 0.0  # requests started per second, first to last
    blocked: str | None = None
    sectorless: str | None = None  # the line naming symbols without a GICS sector
    new_holes: int = 0  # sessions found missing this run (price_holes)
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)


# Statuses in the table, in this order; symbols inactive from earlier runs are not shown
# again (they were said once, when they became inactive).
_TABLE = ("ok", "up-to-date", "failed", "not attempted")


def print_summary(result: IngestResult, enabled: bool = True) -> None:
    if not enabled:
        return
    from rich.table import Table

    table = Table(title="ingest summary", show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("symbols", justify="right")
    table.add_column("rows stored", justify="right")
    for status in _TABLE:
        rows = [r for r in result.results.values() if r.status == status]
        if rows:
            table.add_row(status, str(len(rows)), f"{sum(r.rows for r in rows):,}")
    newly = [r for r in result.results.values() if r.newly_inactive]
    if newly:
        table.add_row("now inactive", str(len(newly)), f"{sum(r.rows for r in newly):,}")
    console.print(table)
    console.print(
        f"{result.requests} requests ({result.retries} retries, {result.throttled} × 429, "
        f"{result.timeouts} timeouts) via {' then '.join(result.transports)} "
        f"in {result.elapsed:.1f} s"
    )
    failed = [r for r in result.results.values() if r.status == "failed"]
    if failed:
        fails = Table(title="failed symbols", header_style="bold red")
        fails.add_column("symbol")
        fails.add_column("attempts", justify="right")
        fails.add_column("reason")
        for r in failed:
            fails.add_row(r.symbol, str(r.attempts), r.error or "")
        console.print(fails)
    for r in newly:
        console.print(f"[yellow]{r.symbol} is now {r.error}[/]")
    flagged = [f"{r.symbol} ({r.flags})" for r in result.results.values() if r.flags]
    if flagged:
        console.print(
            f"price checks flagged {len(flagged)} symbols: {', '.join(flagged)}; "
            "the reasons are in price_flags"
        )
    for line in result.notes:
        console.print(line)
    if result.sectorless:
        console.print(f"[yellow]{result.sectorless}[/]")


def raise_if_incomplete(result: IngestResult) -> None:
    """The documented exit status of an incomplete run, as our own error (exit 4 or 5)."""
    failed = sorted(s for s, r in result.results.items() if r.status == "failed")
    pending = sorted(s for s, r in result.results.items() if r.status == "not attempted")
    if result.blocked:
        raise BlockedError(
            f"{result.blocked}. Progress kept ({result.count('ok')} stored this run, "
            f"{len(pending)} not attempted); rerun the same command later to resume"
        )
    if failed:
        listed = ", ".join(failed[:10]) + (
            f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        )
        raise IngestIncomplete(
            f"{len(failed)} of {len(result.results)} symbols failed ({listed}); reasons are in "
            "the table above and in ingest_status; rerun to retry them"
        )
