"""Trading calendars: when each exchange's session closes, and which symbols share one.

A symbol's calendar is its exchange's time zone (Yahoo's `meta.exchangeTimezoneName`) for
anything traded on an exchange's sessions (EQUITY, ETF, INDEX, MUTUALFUND), and its own
kind of calendar for instruments that trade around the clock or on other hours
(CRYPTOCURRENCY every day, CURRENCY, FUTURE). Ingest uses the session closes to decide
when a day's bar is final; the context features use the calendars so that a symbol of
another calendar never adds or removes market days for the others, and the close instants
so that a day-t feature only uses other calendars' days that closed before it did.
"""

from __future__ import annotations

from datetime import time

import polars as pl

from stockml.defaults import EXCHANGE_TZ_NAME

# Regular-session close, local time, per exchange time zone (where several exchanges
# share a zone, the latest close). A zone missing here uses DEFAULT_SESSION_CLOSE.
SESSION_CLOSE: dict[str, time] = {
    "America/New_York": time(16, 0),
    "America/Toronto": time(16, 0),
    "America/Mexico_City": time(15, 0),
    "America/Sao_Paulo": time(17, 0),
    "America/Santiago": time(16, 0),
    "America/Argentina/Buenos_Aires": time(17, 0),
    "Europe/London": time(16, 35),
    "Europe/Dublin": time(16, 30),
    "Europe/Lisbon": time(16, 35),
    "Europe/Berlin": time(22, 0),  # Frankfurt floor trades until 22:00; Xetra until 17:35
    "Europe/Paris": time(17, 35),
    "Europe/Amsterdam": time(17, 35),
    "Europe/Brussels": time(17, 35),
    "Europe/Zurich": time(17, 30),
    "Europe/Rome": time(17, 35),
    "Europe/Madrid": time(17, 35),
    "Europe/Vienna": time(17, 35),
    "Europe/Stockholm": time(17, 30),
    "Europe/Oslo": time(16, 25),
    "Europe/Copenhagen": time(17, 0),
    "Europe/Helsinki": time(18, 30),
    "Europe/Warsaw": time(17, 5),
    "Europe/Istanbul": time(18, 10),
    "Africa/Johannesburg": time(17, 0),
    "Asia/Jerusalem": time(17, 25),
    "Asia/Riyadh": time(15, 10),
    "Asia/Kolkata": time(15, 30),
    "Asia/Bangkok": time(16, 40),
    "Asia/Jakarta": time(16, 0),
    "Asia/Kuala_Lumpur": time(17, 0),
    "Asia/Singapore": time(17, 16),
    "Asia/Hong_Kong": time(16, 10),
    "Asia/Shanghai": time(15, 0),
    "Asia/Taipei": time(14, 30),
    "Asia/Seoul": time(15, 30),
    "Asia/Tokyo": time(15, 30),
    "Australia/Sydney": time(16, 12),
    "Pacific/Auckland": time(16, 45),
    # Crypto on Yahoo: a daily bar is the UTC calendar day, trading never stops.
    "UTC": time(23, 59, 59),
}
# An unknown zone: assume an evening close, so an unfinished bar is never taken as final.
DEFAULT_SESSION_CLOSE = time(18, 0)
# Instruments whose daily bar is the whole local day (Yahoo: crypto in UTC, currencies in
# London): their session ends at midnight.
ROUND_THE_CLOCK = ("CRYPTOCURRENCY", "CURRENCY", "FUTURE")
END_OF_DAY = time(23, 59, 59)


def calendar_of(timezone: str | None, instrument_type: str | None) -> str:
    """The calendar key of a symbol: its exchange zone, or '<kind>:<zone>' for the
    round-the-clock kinds. Unknown zone: New York (what a symbol without a suffix is)."""
    zone = timezone or EXCHANGE_TZ_NAME
    kind = (instrument_type or "").upper()
    return f"{kind.lower()}:{zone}" if kind in ROUND_THE_CLOCK else zone


def session_close(calendar: str) -> tuple[str, time]:
    """(IANA zone, local close time) of a calendar key from `calendar_of`."""
    kind, _, zone = calendar.rpartition(":")
    if kind:
        return zone, END_OF_DAY
    return zone, SESSION_CLOSE.get(zone, DEFAULT_SESSION_CLOSE)


def with_close_instants(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` (columns date and calendar) with `closes_at`: epoch seconds of that day's
    session close in that calendar (Int64), computed per zone, DST-correct. Rows keep their
    order only when there is one calendar: sort afterwards."""

    def closes(part: pl.DataFrame, calendar: str) -> pl.DataFrame:
        zone, close = session_close(calendar)
        offset = pl.duration(hours=close.hour, minutes=close.minute, seconds=close.second)
        local = (pl.col("date").cast(pl.Datetime("us")) + offset).dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null"
        )
        return part.with_columns(local.dt.epoch("s").alias("closes_at"))

    keys = frame["calendar"].unique()
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("closes_at"))
    if len(keys) == 1:  # the usual store: rows stay in their order
        return closes(frame, str(keys[0]))
    return pl.concat([closes(part, str(key)) for (key,), part in frame.group_by("calendar")])
