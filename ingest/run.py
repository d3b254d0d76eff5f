"""The ingest run: workers, progress, status, summary (the resume plan is `ingest.plan`).

Each symbol's rows and status are written in one transaction by a single writer thread,
so Ctrl-C or kill -9 loses at most the symbols in flight. Outcomes waiting together share
one transaction; if it fails, its symbols are written again one by one, so only the symbol
whose write is at fault fails, with the store's real reason.

Each symbol's window is decided in its exchange's calendar: the request asks for that
zone's midnights, the stored rows are clipped to the asked days as dated by Yahoo's
`exchangeTimezoneName`, and today's bar counts only once that exchange's session is final.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import structlog

from ingest.client import BreakerOpen, ChartClient, FetchPolicy, SymbolFailed
from ingest.plan import (
    FINAL_MARGIN,
    Plan,
    fetch_start_for,
    history_moved,
    last_closed_day,
    local_midnight,
    plan_symbol,
)
from ingest.quality import check_history, needs_full_history
from ingest.universe import exchange_timezone
from ingest.yahoo import ACTION_SCHEMA, BAR_SCHEMA, Chart, clip_to_days, trading_days
from stockml import store
from stockml.defaults import EXCHANGE_TZ_NAME
from stockml.errors import BlockedError, IngestIncomplete, InputError, StockmlError
from stockml.progress import console, make_progress
from stockml.store.prices import WriteFailed

# Outcomes waiting when the writer frees up are committed together (at most this many).
MAX_BATCH = 64


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

    def last_day(self, tz: str) -> date:
        """`end`, capped at the last final session of an exchange in zone `tz`."""
        return last_closed_day(self.end, self.now, tz)


@dataclass
class SymbolResult:
    symbol: str
    status: str  # ok, failed, up-to-date, not attempted
    rows: int = 0
    attempts: int = 0
    error: str | None = None
    refetched: bool = False
    flags: str = ""  # what the price checks did, e.g. '1 repaired' (see price_flags)


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

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)


class IngestRun:
    def __init__(self, request: IngestRequest, con: duckdb.DuckDBPyConnection) -> None:
        self.request = request
        self.con = con
        self.policy = request.policy
        self.ends = {s: request.last_day(exchange_timezone(s)) for s in request.symbols}
        self.fetch_start = fetch_start_for(request.start)
        self.results: dict[str, SymbolResult] = {}
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self.log = structlog.get_logger("ingest")
        self.progress = None
        self.task = None
        self.client: ChartClient | None = None
        self.pending: asyncio.Queue = asyncio.Queue()

    # -- all DuckDB work runs on the single writer thread --
    async def _read(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    async def _submit(self, write: store.SymbolWrite) -> int:
        """Queue one symbol's outcome; resolves with its stored row count once committed."""
        future = asyncio.get_running_loop().create_future()
        await self.pending.put((write, future))
        return await future

    async def _write_batches(self) -> None:
        """Commit whatever outcomes are waiting, together: one transaction per batch."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.pending.get()]
            while not self.pending.empty() and len(batch) < MAX_BATCH:
                batch.append(self.pending.get_nowait())
            writes = [w for w, _ in batch]
            try:
                rows = await loop.run_in_executor(self.writer, store.write_batch, self.con, writes)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exception=exc)
                    continue
                # One symbol's bad write must not fail its neighbours: write each alone.
                self.log.warning("batch_write_failed", symbols=len(batch), error=str(exc))
                for write, future in batch:
                    try:
                        alone = await loop.run_in_executor(
                            self.writer, store.write_batch, self.con, [write]
                        )
                    except Exception as single:
                        _settle(future, exception=single)
                    else:
                        _settle(future, result=alone[write.symbol])
                continue
            for write, future in batch:
                _settle(future, result=rows[write.symbol])

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
        self.flagged = store.flagged_symbols(self.con)
        plans = {
            s: plan_symbol(state.get(s), self.fetch_start, self.ends[s])
            for s in self.request.symbols
        }
        for symbol, plan in plans.items():
            if plan.kind == "skip":
                rows = state[symbol].rows
                self.results[symbol] = SymbolResult(symbol, "up-to-date", rows=rows)
        todo = [s for s in self.request.symbols if plans[s].kind != "skip"]
        self.log.info(
            "ingest_start",
            symbols=len(self.request.symbols),
            to_fetch=len(todo),
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
        blocked: str | None = None
        progress = make_progress(self.request.progress)
        self.progress = progress
        with progress:
            self.task = progress.add_task(
                "ingest", total=len(self.request.symbols), completed=len(self.results), status=""
            )
            ticker = asyncio.create_task(self._tick())
            writer = asyncio.create_task(self._write_batches())
            tasks = [asyncio.create_task(self._one(s, plans[s], state.get(s))) for s in todo]
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
                writer.cancel()
                await asyncio.gather(ticker, writer, return_exceptions=True)
                self._refresh_status()
                await self.client.close()
                self.writer.shutdown(wait=True)
        for symbol in self.request.symbols:
            self.results.setdefault(symbol, SymbolResult(symbol, "not attempted"))
        if self.client.worked:
            store.set_setting(self.con, "ingest.transport", self.client.worked)
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
        )
        self.log.info(
            "ingest_done",
            ok=result.count("ok"),
            failed=result.count("failed"),
            up_to_date=result.count("up-to-date"),
            not_attempted=result.count("not attempted"),
            requests=result.requests,
            seconds=round(result.elapsed, 2),
            blocked=blocked,
        )
        return result

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

    async def _one(self, symbol: str, plan: Plan, state: store.IngestState | None) -> None:
        try:
            result = await self._fetch_and_store(symbol, plan, state)
        except (BreakerOpen, asyncio.CancelledError):
            raise
        except SymbolFailed as exc:
            result = await self._fail(symbol, str(exc))
        except WriteFailed as exc:
            result = await self._fail(symbol, f"store write failed: {exc}")
        except Exception as exc:  # every symbol ends ok or failed-with-reason, even on a bug
            self.log.exception("symbol_crashed", symbol=symbol)
            result = await self._fail(symbol, f"internal error: {type(exc).__name__}: {exc}")
        self.results[symbol] = result
        if self.progress is not None:
            self.progress.advance(self.task)
            if result.status == "failed" and self.request.progress:
                self.progress.console.print(f"[red]✗ {symbol}[/]: {result.error}")

    async def _fail(self, symbol: str, error: str) -> SymbolResult:
        attempts = self.client.stats.attempts[symbol]
        await self._submit(
            store.SymbolWrite(symbol, attempts, self.client.transport_name, error=error)
        )
        self.log.warning("symbol_failed", symbol=symbol, error=error, attempts=attempts)
        return SymbolResult(symbol, "failed", attempts=attempts, error=error)

    async def _fetch_and_store(
        self, symbol: str, plan: Plan, state: store.IngestState | None
    ) -> SymbolResult:
        zone = exchange_timezone(symbol)
        end = self.ends[symbol]
        period2 = local_midnight(end + timedelta(days=1), zone)
        refetched = False
        if plan.kind == "incremental":
            fetched = await self.client.fetch(symbol, local_midnight(plan.since, zone), period2)
            stored = await self._read(store.overlap_prices, self.con, symbol, plan.since)
            actions = await self._read(store.stored_actions, self.con, symbol)
            if fetched is not None:
                chart, end = self._clip(fetched, plan.since, end)
                if not history_moved(chart, stored, actions, plan.since) and not needs_full_history(
                    chart.bars, chart.actions
                ):
                    return await self._store(
                        symbol, chart, plan.since, state.fetched_from, end, state
                    )
            refetched = True
            self.log.info("history_moved", symbol=symbol, since=str(plan.since))
        fetch_from = self.fetch_start
        if state is not None and state.fetched_from is not None:
            fetch_from = min(fetch_from, state.fetched_from)
        fetched = await self.client.fetch(symbol, local_midnight(fetch_from, zone), period2)
        if fetched is None:
            chart = Chart(
                symbol, pl.DataFrame(schema=BAR_SCHEMA), pl.DataFrame(schema=ACTION_SCHEMA)
            )
        else:
            chart, end = self._clip(fetched, fetch_from, end)
        result = await self._store(symbol, chart, None, fetch_from, end, state)
        result.refetched = refetched
        return result

    def _clip(self, chart: Chart, first: date, end: date) -> tuple[Chart, date]:
        """The chart cut to the asked days in its exchange's calendar, and the last day
        that is final there (Yahoo's zone may differ from the one the suffix suggested;
        its current session, when announced, is final only once it has ended)."""
        end = min(end, self.request.last_day(chart.timezone))
        if chart.session_end is not None:
            now = self.request.now or datetime.now().astimezone()
            if now.timestamp() < chart.session_end + FINAL_MARGIN.total_seconds():
                stamp = [chart.session_end]
                session_day = trading_days(np.array(stamp), chart.timezone)[0].item()
                end = min(end, session_day - timedelta(days=1))
        return clip_to_days(chart, first, end), end

    async def _store(
        self,
        symbol: str,
        chart: Chart,
        replace_from: date | None,
        fetched_from: date,
        fetched_through: date,
        state: store.IngestState | None,
    ) -> SymbolResult:
        attempts = self.client.stats.attempts[symbol]
        bars, findings = check_history(chart.bars, chart.actions)
        rows = await self._submit(
            store.SymbolWrite(
                symbol,
                attempts,
                self.client.worked or self.client.transport_name,
                bars=bars,
                actions=chart.actions,
                replace_from=replace_from,
                fetched_from=fetched_from,
                fetched_through=fetched_through,
                dropped_null=chart.dropped_null,
                dropped_invalid=chart.dropped_invalid,
                first_write=state is None or not state.rows,
            )
        )
        self.log.info(
            "symbol_stored",
            symbol=symbol,
            rows=rows,
            fetched=chart.bars.height,
            dropped_null=chart.dropped_null,
            dropped_invalid=chart.dropped_invalid,
            dropped_unfinished=chart.dropped_unfinished,
            dropped_outside=chart.dropped_outside,
            dropped_duplicate=chart.dropped_duplicate,
            mode="incremental" if replace_from is not None else "full",
        )
        flags = [(f.date, f.kind, f.detail, f.action) for f in findings]
        if flags or symbol in self.flagged:  # nothing to replace: no DuckDB round trip
            await self._read(store.replace_price_flags, self.con, symbol, flags, replace_from)
        if findings:
            self.log.warning(
                "prices_flagged", symbol=symbol, flags=[f"{d} {k} {a}" for d, k, _, a in flags]
            )
        counts = {a: sum(f.action == a for f in findings) for a in ("repaired", "quarantined")}
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        return SymbolResult(symbol, "ok", rows=rows, attempts=attempts, flags=summary)


def _settle(
    future: asyncio.Future, result: int = 0, exception: BaseException | None = None
) -> None:
    """Resolve a writer future once (a cancelled symbol's future may already be done)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


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
        con.close()
    print_summary(result, request.progress)
    _raise_if_incomplete(result)
    return result


def print_summary(result: IngestResult, enabled: bool = True) -> None:
    if not enabled:
        return
    from rich.table import Table

    table = Table(title="ingest summary", show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("symbols", justify="right")
    table.add_column("rows stored", justify="right")
    for status in ("ok", "up-to-date", "failed", "not attempted"):
        rows = [r for r in result.results.values() if r.status == status]
        if rows:
            table.add_row(status, str(len(rows)), f"{sum(r.rows for r in rows):,}")
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
    flagged = [f"{r.symbol} ({r.flags})" for r in result.results.values() if r.flags]
    if flagged:
        console.print(
            f"price checks flagged {len(flagged)} symbols: {', '.join(flagged)}; "
            "the reasons are in price_flags"
        )


def _raise_if_incomplete(result: IngestResult) -> None:
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
