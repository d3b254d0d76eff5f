"""The resume plan: which window each symbol needs, from what its stored history covers.

Per symbol the plan is one of:
    up to date   the stored history already covers [fetch_start, end]: no request;
    incremental  fetch from a short overlap before the last stored day; if any overlapping
                 value moved or a new dividend/split appears (`history_moved`), Yahoo has
                 re-adjusted the history, so the whole history is fetched again and replaced;
    full         nothing usable stored (or earlier history wanted): fetch everything.
Days are New York trading days; request windows are epoch seconds of New York midnights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ingest.yahoo import Chart
from stockml.defaults import EXCHANGE_TZ
from stockml.store import IngestState

# Without --start, a run wants the last two years before --end.
DEFAULT_HISTORY_DAYS = 730
# The longest feature lookback is 252 trading days and EMA-style features want a seed
# run-in on top: 450 calendar days give >= 300 trading days before --start.
WARMUP_CALENDAR_DAYS = 450
OVERLAP_CALENDAR_DAYS = 10
# Yahoo's daily bar is final some time after the 16:00 close; before this hour (New York)
# today's bar is treated as unfinished and not requested.
BAR_FINAL_HOUR = 20
VALUE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Plan:
    kind: str  # "skip", "incremental", "full"
    since: date | None = None  # incremental: the overlap's first day


def ny_midnight(day: date) -> int:
    """Epoch seconds of 00:00 New York on `day` (period1/period2 boundaries)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=EXCHANGE_TZ).timestamp())


def last_closed_day(end: date, now: datetime | None = None) -> date:
    """`end`, capped so today's unfinished bar is never asked for."""
    now_ny = (now or datetime.now(EXCHANGE_TZ)).astimezone(EXCHANGE_TZ)
    today = now_ny.date()
    cap = today if now_ny.hour >= BAR_FINAL_HOUR else today - timedelta(days=1)
    return min(end, cap)


def fetch_start_for(start: date) -> date:
    """The first day fetched for a run starting at `start`: the features' warm-up before it."""
    return start - timedelta(days=WARMUP_CALENDAR_DAYS)


def plan_symbol(state: IngestState | None, fetch_start: date, end: date) -> Plan:
    """What one symbol needs, from what its stored history covers."""
    if state is None or state.fetched_from is None or state.fetched_through is None:
        return Plan("full")
    covered = state.fetched_from <= fetch_start and state.fetched_through >= end
    if state.status == "ok" and covered:
        return Plan("skip")
    if not state.rows or state.fetched_from > fetch_start:
        return Plan("full")
    anchor = state.last_date or state.fetched_through
    return Plan("incremental", since=anchor - timedelta(days=OVERLAP_CALENDAR_DAYS))


def history_moved(
    chart: Chart,
    stored: dict[date, tuple[float, ...]],
    stored_actions: set[tuple[date, str]],
    since: date,
) -> bool:
    """True when Yahoo re-adjusted: an overlapping value changed or a new event appeared."""
    fresh = {
        row[0]: row[1:]
        for row in chart.bars.select(
            "date", "open", "high", "low", "close", "adjclose", "volume"
        ).iter_rows()
    }
    for day, old in stored.items():
        new = fresh.get(day)
        if new is None:
            return True
        for a, b in zip(old, new, strict=True):
            if a is None or b is None:
                if a is not b:
                    return True
            elif abs(a - b) > VALUE_TOLERANCE * max(abs(a), abs(b), 1.0):
                return True
    for day, kind in chart.actions.select("date", "kind").iter_rows():
        if day >= since and (day, kind) not in stored_actions:
            return True
    return False
