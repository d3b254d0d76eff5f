"""The per-symbol fetch: one symbol's plan -> requests -> checks -> one outcome to store.

Every symbol ends `ok` or `failed` with a reason (even when its task raises), or
`inactive`; only a full disk stops the run instead (one line from the CLI). For one
symbol, in order:

    fetch        the plan's window (`ingest.plan`) in its exchange's midnights; an
                 incremental answer whose overlap moved (Yahoo re-adjusted), that needs a
                 repair reaching before the window, or that is complete where the stored
                 history came from an incomplete answer (`missing_adjclose`), becomes a full
                 fetch of the whole history;
    identity     an answer naming another instrument (`meta.symbol`) or quoting another
                 currency than the stored history fails the symbol and stores nothing;
    clip         the rows are cut to the asked days as dated in Yahoo's
                 `exchangeTimezoneName`, and today's bar counts only once that exchange's
                 session is final;
    checks       `ingest.quality.check_history`: repairs where exact, flags otherwise;
    store        bars, events, status, null days and flags through the batched writer.

A 404 ('No data found, symbol may be delisted') counts one more run in `not_found_runs`;
on the INACTIVE_AFTER-th consecutive one the symbol becomes `inactive`: said once, no
longer a failure (no exit 4), no longer requested (`ingest.plan`), its rows kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import structlog

from ingest.client import BreakerOpen, ChartClient, SymbolFailed
from ingest.plan import FINAL_MARGIN, Plan, history_moved, last_closed_day, local_midnight
from ingest.quality import check_history, needs_full_history
from ingest.universe import exchange_timezone
from ingest.writer import BatchWriter
from ingest.yahoo import (
    ACTION_SCHEMA,
    BAR_SCHEMA,
    Chart,
    WrongInstrument,
    check_identity,
    clip_to_days,
    trading_days,
)
from stockml import store
from stockml.errors import no_space_message
from stockml.store.prices import WriteFailed

# Consecutive runs answered 404 after which a symbol is inactive. One 404 is not enough:
# Yahoo has sent transient 404s for good symbols (../shared/yahoo-chart-api.md).
INACTIVE_AFTER = 3


@dataclass
class SymbolResult:
    symbol: str
    status: str  # ok, failed, up-to-date, not attempted, inactive
    rows: int = 0
    attempts: int = 0
    error: str | None = None
    refetched: bool = False
    flags: str = ""  # what the price checks did, e.g. '1 repaired' (see price_flags)
    newly_inactive: bool = False  # became inactive in this run (said once)


@dataclass(frozen=True)
class FetchContext:
    """What every symbol's fetch of one run shares."""

    client: ChartClient
    writer: BatchWriter
    fetch_start: date
    now: datetime | None  # the clock deciding which sessions are final (None: now)
    flagged: frozenset[str]  # symbols with stored price_flags
    incomplete: frozenset[str]  # symbols stored from an answer without adjclose


async def fetch_symbol(
    ctx: FetchContext, symbol: str, plan: Plan, state: store.IngestState | None, end: date
) -> SymbolResult:
    """One symbol's whole outcome, stored; never raises except BreakerOpen and cancellation."""
    log = structlog.get_logger("ingest")
    try:
        return await _fetch_and_store(ctx, symbol, plan, state, end)
    except BreakerOpen:
        raise
    except SymbolFailed as exc:
        return await _fail(ctx, symbol, str(exc), state, exc.not_found)
    except WriteFailed as exc:
        if no_space_message(exc) is not None:
            raise  # a full disk fails every symbol alike: the run stops, in one line
        return await _fail(ctx, symbol, f"store write failed: {exc}", state)
    except Exception as exc:  # every symbol ends ok or failed-with-reason, even on a bug
        log.exception("symbol_crashed", symbol=symbol)
        return await _fail(ctx, symbol, f"internal error: {type(exc).__name__}: {exc}", state)


async def _fail(
    ctx: FetchContext,
    symbol: str,
    error: str,
    state: store.IngestState | None,
    not_found: bool = False,
) -> SymbolResult:
    attempts = ctx.client.stats.attempts[symbol]
    runs = (state.not_found_runs if state is not None else 0) + 1
    inactive = not_found and runs >= INACTIVE_AFTER
    if inactive:
        kept = state.rows if state is not None else 0
        error = (
            f"inactive: Yahoo answered 404 on {runs} consecutive runs ({error}); "
            f"its {kept:,} stored rows are kept and it is no longer requested"
        )
    await ctx.writer.submit(
        store.SymbolWrite(
            symbol,
            attempts,
            ctx.client.transport_name,
            error=error,
            not_found=not_found,
            inactive=inactive,
        )
    )
    log = structlog.get_logger("ingest")
    if inactive:
        log.warning("symbol_inactive", symbol=symbol, not_found_runs=runs, error=error)
        rows = state.rows if state is not None else 0
        return SymbolResult(symbol, "inactive", rows, attempts, error, newly_inactive=True)
    log.warning("symbol_failed", symbol=symbol, error=error, attempts=attempts)
    return SymbolResult(symbol, "failed", attempts=attempts, error=error)


async def _checked(
    ctx: FetchContext, symbol: str, period1: int, period2: int, state: store.IngestState | None
) -> Chart | None:
    chart = await ctx.client.fetch(symbol, period1, period2)
    if chart is not None:
        try:
            check_identity(chart, symbol, state.currency if state is not None else None)
        except WrongInstrument as exc:
            raise SymbolFailed(str(exc)) from exc
    return chart


async def _fetch_and_store(
    ctx: FetchContext, symbol: str, plan: Plan, state: store.IngestState | None, end: date
) -> SymbolResult:
    zone = exchange_timezone(symbol)
    period2 = local_midnight(end + timedelta(days=1), zone)
    refetched = False
    if plan.kind == "incremental":
        fetched = await _checked(ctx, symbol, local_midnight(plan.since, zone), period2, state)
        stored = await ctx.writer.read(store.overlap_prices, symbol, plan.since)
        actions = await ctx.writer.read(store.stored_actions, symbol)
        if fetched is not None:
            chart, end = _clip(ctx, fetched, plan.since, end)
            moved = history_moved(chart, stored, actions, plan.since)
            repair = needs_full_history(chart.bars, chart.actions, chart.has_adjclose)
            completes = chart.has_adjclose and symbol in ctx.incomplete
            if not (moved or repair or completes):
                return await _store(ctx, symbol, chart, plan.since, state.fetched_from, end, state)
        refetched = True
        structlog.get_logger("ingest").info("history_moved", symbol=symbol, since=str(plan.since))
    fetch_from = ctx.fetch_start
    if state is not None and state.fetched_from is not None:
        fetch_from = min(fetch_from, state.fetched_from)
    fetched = await _checked(ctx, symbol, local_midnight(fetch_from, zone), period2, state)
    if fetched is None:
        chart = Chart(symbol, pl.DataFrame(schema=BAR_SCHEMA), pl.DataFrame(schema=ACTION_SCHEMA))
    else:
        chart, end = _clip(ctx, fetched, fetch_from, end)
    result = await _store(ctx, symbol, chart, None, fetch_from, end, state)
    result.refetched = refetched
    return result


def _clip(ctx: FetchContext, chart: Chart, first: date, end: date) -> tuple[Chart, date]:
    """The chart cut to the asked days in its exchange's calendar, and the last day that is
    final there (Yahoo's zone may differ from the one the suffix suggested; its current
    session, when announced, is final only once it has ended)."""
    end = last_closed_day(end, ctx.now, chart.timezone)
    if chart.session_end is not None:
        now = ctx.now or datetime.now().astimezone()
        if now.timestamp() < chart.session_end + FINAL_MARGIN.total_seconds():
            stamp = [chart.session_end]
            session_day = trading_days(np.array(stamp), chart.timezone)[0].item()
            end = min(end, session_day - timedelta(days=1))
    return clip_to_days(chart, first, end), end


async def _store(
    ctx: FetchContext,
    symbol: str,
    chart: Chart,
    replace_from: date | None,
    fetched_from: date,
    fetched_through: date,
    state: store.IngestState | None,
) -> SymbolResult:
    client = ctx.client
    attempts = client.stats.attempts[symbol]
    bars, findings = check_history(chart.bars, chart.actions, chart.has_adjclose)
    rows = await ctx.writer.submit(
        store.SymbolWrite(
            symbol,
            attempts,
            client.worked or client.transport_name,
            bars=bars,
            actions=chart.actions,
            replace_from=replace_from,
            fetched_from=fetched_from,
            fetched_through=fetched_through,
            dropped_null=chart.dropped_null,
            dropped_invalid=chart.dropped_invalid,
            first_write=state is None or not state.rows,
            invalid_volume=chart.invalid_volume,
            currency=chart.currency,
            exchange_timezone=chart.timezone,
            instrument_type=chart.instrument_type,
            null_dates=tuple(d for d in chart.null_dates if fetched_from <= d <= fetched_through),
        )
    )
    log = structlog.get_logger("ingest")
    log.info(
        "symbol_stored",
        symbol=symbol,
        rows=rows,
        fetched=chart.bars.height,
        dropped_null=chart.dropped_null,
        dropped_invalid=chart.dropped_invalid,
        dropped_unfinished=chart.dropped_unfinished,
        dropped_outside=chart.dropped_outside,
        dropped_duplicate=chart.dropped_duplicate,
        invalid_volume=chart.invalid_volume,
        mode="incremental" if replace_from is not None else "full",
    )
    flags = [(f.date, f.kind, f.detail, f.action) for f in findings]
    if flags or symbol in ctx.flagged:  # nothing to replace: no DuckDB round trip
        await ctx.writer.read(store.replace_price_flags, symbol, flags, replace_from)
    if findings:
        log.warning("prices_flagged", symbol=symbol, flags=[f"{d} {k} {a}" for d, k, _, a in flags])
    counts = {a: sum(f.action == a for f in findings) for a in ("repaired", "quarantined")}
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    return SymbolResult(symbol, "ok", rows=rows, attempts=attempts, flags=summary)
