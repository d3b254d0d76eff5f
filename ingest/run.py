"""The ingest run: plan every symbol, fetch them under one client, show progress, report.

    plan      `ingest.plan`: skip, incremental, full or inactive, from `ingest_status`
    fetch     `ingest.fetch.fetch_symbol` per symbol, all under one `ChartClient` (throttle,
              deadline, retries, breaker)
    write     `ingest.writer.BatchWriter`: one thread, one transaction per batch of outcomes,
              so Ctrl-C or kill -9 loses at most the symbols in flight
    after     sessions missing against each symbol's calendar become `price_holes`; the
              symbols without a GICS sector are named
    report    `ingest.summary`: the tables and the documented exit status

Each symbol's window is decided in its exchange's calendar: the request asks for that
zone's midnights, the stored rows are clipped to the asked days as dated by Yahoo's
`exchangeTimezoneName`, and today's bar counts only once that exchange's session is final.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import structlog

from ingest.client import BreakerOpen, ChartClient, FetchPolicy
from ingest.fetch import FetchContext, SymbolResult, fetch_symbol
from ingest.plan import fetch_start_for, last_closed_day, plan_symbol
from ingest.sectors import describe_unknown
from ingest.summary import IngestResult, print_summary, raise_if_incomplete
from ingest.universe import exchange_timezone
from ingest.writer import BatchWriter
from stockml import store
from stockml.defaults import EXCHANGE_TZ_NAME
from stockml.errors import InputError, StockmlError
from stockml.progress import make_progress
from stockml.store.holes import record_missing_sessions

__all__ = ["IngestRequest", "IngestResult", "IngestRun", "SymbolResult", "run_ingest"]


class Interrupted(StockmlError):
    exit_code = 130


@dataclass(frozen=True)
class IngestRequest:
    symbols: list[str]
    start: date
    end: date
    db_path: Path
    policy: FetchPolicy
    progress: bool = True
    listings: list[tuple[str, str, str]] = field(default_factory=list)
    now: datetime | None = None  # the clock deciding which sessions are final (tests set it)
    recheck_inactive: bool = False  # ask Yahoo again for symbols marked inactive

    def last_day(self, tz: str) -> date:
        """`end`, capped at the last final session of an exchange in zone `tz`."""
        return last_closed_day(self.end, self.now, tz)


class IngestRun:
    def __init__(self, request: IngestRequest, con: duckdb.DuckDBPyConnection) -> None:
        self.request = request
        self.con = con
        self.policy = request.policy
        self.ends = {s: request.last_day(exchange_timezone(s)) for s in request.symbols}
        self.fetch_start = fetch_start_for(request.start)
        self.results: dict[str, SymbolResult] = {}
        self.writer = BatchWriter(con)
        self.log = structlog.get_logger("ingest")
        self.progress = None
        self.task = None
        self.client: ChartClient | None = None

    def _first_transport(self) -> str:
        if self.policy.transport != "auto":
            return self.policy.transport
        remembered = store.get_setting(self.con, "ingest.transport")
        return remembered if remembered in ("aiohttp", "curl") else "aiohttp"

    def _on_switch(self, old: str, new: str) -> None:
        message = (
            f"[yellow]Yahoo refused the {old} client (429 text/html from the first requests): "
            f"switching to {new} and carrying on[/]"
        )
        if self.progress is not None and self.request.progress:
            self.progress.console.print(message)

    async def run(self) -> IngestResult:
        started = time.perf_counter()
        state = store.ingest_state(self.con)
        plans = {
            s: plan_symbol(
                state.get(s), self.fetch_start, self.ends[s], self.request.recheck_inactive
            )
            for s in self.request.symbols
        }
        for symbol, plan in plans.items():
            if plan.kind in ("skip", "inactive"):
                status = "up-to-date" if plan.kind == "skip" else "inactive"
                self.results[symbol] = SymbolResult(symbol, status, rows=state[symbol].rows)
        todo = [s for s in self.request.symbols if symbol_needs_fetch(plans[s].kind)]
        self.log.info(
            "ingest_start",
            symbols=len(self.request.symbols),
            to_fetch=len(todo),
            inactive=sum(p.kind == "inactive" for p in plans.values()),
            start=str(self.request.start),
            end=str(max(self.ends.values(), default=self.request.end)),
            fetch_from=str(self.fetch_start),
            rate=self.policy.rate,
            concurrency=self.policy.concurrency,
            timeout=self.policy.timeout,
            retries=self.policy.retries,
            base_url=self.policy.base_url,
        )
        self.client = ChartClient(self.policy, self._first_transport(), self._on_switch)
        ctx = FetchContext(
            client=self.client,
            writer=self.writer,
            fetch_start=self.fetch_start,
            now=self.request.now,
            flagged=frozenset(store.flagged_symbols(self.con)),
            incomplete=frozenset(store.flagged_symbols(self.con, "missing_adjclose")),
        )
        blocked: str | None = None
        progress = make_progress(self.request.progress)
        self.progress = progress
        with progress:
            self.task = progress.add_task(
                "ingest", total=len(self.request.symbols), completed=len(self.results), status=""
            )
            ticker = asyncio.create_task(self._tick())
            writer = asyncio.create_task(self.writer.run())
            tasks = [asyncio.create_task(self._one(ctx, s, plans[s], state.get(s))) for s in todo]
            try:
                for finished in asyncio.as_completed(tasks):
                    try:
                        await finished
                    except BreakerOpen as exc:
                        blocked = str(exc)
                        break
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                ticker.cancel()
                await self.writer.finish()  # what was queued is committed, then it stops
                await asyncio.gather(ticker, writer, return_exceptions=True)
                self._refresh_status()
                await self.client.close()
                self.writer.shutdown()
        for symbol in self.request.symbols:
            self.results.setdefault(symbol, SymbolResult(symbol, "not attempted"))
        if self.client.worked:
            store.set_setting(self.con, "ingest.transport", self.client.worked)
        new_holes = self._record_missing_sessions(plans)
        stats = self.client.stats
        result = IngestResult(
            results=self.results,
            elapsed=time.perf_counter() - started,
            requests=stats.requests,
            retries=stats.retries,
            throttled=stats.throttled,
            timeouts=stats.timeouts,
            transports=self.client.transports_tried,
            start_rate=stats.start_rate,
            blocked=blocked,
            sectorless=self._sectorless(),
            new_holes=new_holes,
        )
        if new_holes:
            result.notes.append(
                f"{new_holes} sessions missing against their calendar recorded in price_holes; "
                "later runs ask Yahoo for them again"
            )
        self.log.info(
            "ingest_done",
            ok=result.count("ok"),
            failed=result.count("failed"),
            up_to_date=result.count("up-to-date"),
            not_attempted=result.count("not attempted"),
            inactive=result.count("inactive"),
            new_holes=new_holes,
            requests=result.requests,
            seconds=round(result.elapsed, 2),
            blocked=blocked,
        )
        return result

    def _record_missing_sessions(self, plans: dict) -> int:
        """Holes against each stored symbol's calendar, in the windows this run stored."""
        written = [
            (s, plans[s].since if plans[s].kind == "incremental" and not r.refetched else None)
            for s, r in self.results.items()
            if r.status == "ok"
        ]
        return record_missing_sessions(self.con, written)

    def _sectorless(self) -> str | None:
        """The line naming the run's stored symbols that have no sector (said in the log
        too), or None."""
        rows = self.con.execute(
            "SELECT r.symbol FROM (SELECT unnest(?) AS symbol) r "
            "LEFT JOIN symbols s USING (symbol) WHERE s.sector IS NULL OR s.sector = ''",
            [[s for s, r in self.results.items() if r.status in ("ok", "up-to-date")]],
        ).fetchall()
        missing = [r[0] for r in rows]
        if missing:
            self.log.warning("no_sector", symbols=len(missing), listed=missing[:50])
        return describe_unknown(missing)

    async def _tick(self) -> None:
        while True:
            self._refresh_status()
            await asyncio.sleep(0.25)

    def _refresh_status(self) -> None:
        if self.progress is None or self.client is None:
            return
        stats = self.client.stats
        now = sorted(stats.in_flight)[:4]
        more = len(stats.in_flight) - len(now)
        text = (
            f"ok {self._count('ok')} · failed {self._count('failed')} · "
            f"retrying {len(stats.retrying)} · via {self.client.transport_name}"
        )
        if now:
            text += " · now " + " ".join(now) + (f" +{more}" if more > 0 else "")
        self.progress.update(self.task, status=text)

    def _count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    async def _one(self, ctx: FetchContext, symbol: str, plan, state) -> None:
        result = await fetch_symbol(ctx, symbol, plan, state, self.ends[symbol])
        self.results[symbol] = result
        if self.progress is not None:
            self.progress.advance(self.task)
            if result.status == "failed" and self.request.progress:
                self.progress.console.print(f"[red]✗ {symbol}[/]: {result.error}")


def symbol_needs_fetch(kind: str) -> bool:
    return kind not in ("skip", "inactive")


def validate_dates(start: date, end: date) -> None:
    if start > end:
        raise InputError(f"--start {start} is after --end {end}")


def run_ingest(request: IngestRequest) -> IngestResult:
    """Run one ingest, print the summary, and raise the documented error when incomplete."""
    validate_dates(request.start, request.end)
    zones = {exchange_timezone(s) for s in request.symbols} or {EXCHANGE_TZ_NAME}
    if max(request.last_day(z) for z in zones) < request.start:
        raise InputError(
            f"no closed trading day between --start {request.start} and --end {request.end} yet"
        )
    con = store.connect(request.db_path)
    try:
        if request.listings:
            store.upsert_symbols(con, request.listings)
        ingest_run = IngestRun(request, con)
        try:
            result = asyncio.run(ingest_run.run())
        except KeyboardInterrupt:
            done = ingest_run._count("ok")
            raise Interrupted(
                f"interrupted: {done} symbols stored in this run are kept; "
                "run the same command again to resume"
            ) from None
    finally:
        store.close(con)
    print_summary(result, request.progress)
    raise_if_incomplete(result)
    return result
