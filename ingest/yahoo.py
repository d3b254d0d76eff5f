"""Yahoo's chart JSON -> validated columns. Knows Yahoo's quirks, nothing about HTTP.

What the caller may rely on (see ../shared/yahoo-chart-api.md for why each rule exists):
- a bar's date is the trading day of its timestamp in the exchange's own zone
  (`meta.exchangeTimezoneName`, New York when absent; never the UTC date), kept in `timezone`;
- nothing stamped before period1 (a stray bar before the asked window) is returned
  (`dropped_outside`), nor on or after period2 (today's unfinished bar, late rows);
- bars come out in timestamp order, one per date: a timestamp served twice keeps its last
  copy (`dropped_duplicate`); a date served at two stamps keeps the earlier, regular-session
  one, not the live duplicate (counted in `dropped_unfinished`);
- rows with a null price are dropped and counted (`dropped_null`), never filled;
- rows with impossible values (price <= 0, low > high, close outside [low, high]) are
  dropped and counted (`dropped_invalid`);
- `adjclose` falls back to `close` when Yahoo sends none (some instruments; exact when the
  answer reports no dividend); `has_adjclose` says which, so the price checks can rebuild it
  from the dividends (ingest.quality) and a later complete answer can replace it;
- values are kept exactly as served (float32 widened to double), volume as an integer; a
  volume that cannot be (negative, beyond int64, not a whole number, not a number at all) is
  NULL and counted (`invalid_volume`), the bar itself kept;
- a 1:1 split (numerator = denominator) is no event and is left out;
- `meta.symbol`, `meta.currency` and `meta.instrumentType` are kept as Yahoo named them:
  the caller refuses an answer for another instrument (`check_identity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import polars as pl

from stockml.defaults import EXCHANGE_TZ_NAME


class ChartError(Exception):
    """A response that is not a usable chart. `retryable` says whether to try again."""

    retryable = True


class ChartUnparseable(ChartError):
    """HTML, truncated JSON, `{"chart": null}`: Yahoo faults worth retrying."""


class ChartNotFound(ChartError):
    """Yahoo's 404 'No data found, symbol may be delisted': not retried within a run."""

    retryable = False


class ChartRejected(ChartError):
    """A 4xx with Yahoo's error envelope (e.g. invalid parameter): retrying cannot help."""

    retryable = False


class WrongInstrument(ChartError):
    """An answer naming another instrument than the one asked (`meta.symbol`), or quoting it
    in another currency than the stored history: nothing of it may be stored."""

    retryable = False


@dataclass
class Chart:
    symbol: str
    bars: pl.DataFrame  # symbol, date, open, high, low, close, adjclose, volume
    actions: pl.DataFrame  # symbol, date, kind, value
    dropped_null: int = 0
    dropped_invalid: int = 0
    dropped_unfinished: int = 0
    dropped_outside: int = 0
    dropped_duplicate: int = 0
    timezone: str = EXCHANGE_TZ_NAME
    # meta.currentTradingPeriod.regular.end (epoch seconds), when Yahoo sends it.
    session_end: int | None = None
    notes: list[str] = field(default_factory=list)
    invalid_volume: int = 0  # volumes that cannot be, stored as NULL
    has_adjclose: bool = True  # False: Yahoo sent no adjclose and it is `close`
    null_dates: list[date] = field(default_factory=list)  # days served with a null price
    meta_symbol: str | None = None  # what Yahoo says the answer is for
    currency: str | None = None
    instrument_type: str | None = None


BAR_SCHEMA = {
    "symbol": pl.String,
    "date": pl.Date,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "adjclose": pl.Float64,
    "volume": pl.Int64,
}
ACTION_SCHEMA = {"symbol": pl.String, "date": pl.Date, "kind": pl.String, "value": pl.Float64}


def _envelope_error(doc: object) -> tuple[str, str] | None:
    if isinstance(doc, dict) and isinstance(doc.get("chart"), dict):
        err = doc["chart"].get("error")
        if isinstance(err, dict):
            return str(err.get("code", "")), str(err.get("description", ""))
    return None


def classify_error(status: int, body: bytes) -> ChartError:
    """Map a non-200 response to the error the retry policy acts on."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    envelope = _envelope_error(doc)
    if status == 404:
        detail = envelope[1] if envelope else "No data found"
        return ChartNotFound(f"unknown symbol (Yahoo 404: {detail})")
    if 400 <= status < 500 and status != 429 and envelope is not None:
        return ChartRejected(f"Yahoo {status}: {envelope[1] or envelope[0]}")
    snippet = body[:60].decode("utf-8", "replace").strip().replace("\n", " ")
    return ChartUnparseable(f"HTTP {status}: {snippet or 'empty body'}")


def is_no_data_in_window(status: int, body: bytes) -> bool:
    """Yahoo's 400 'Data doesn't exist for startDate…': the window is before the first trade."""
    if status != 400:
        return False
    try:
        envelope = _envelope_error(orjson.loads(body))
    except orjson.JSONDecodeError:
        return False
    return envelope is not None and "doesn't exist" in envelope[1]


def _column(quote: dict, key: str, n: int) -> np.ndarray:
    values = quote.get(key)
    if values is None:
        return np.full(n, np.nan)
    if len(values) != n:
        raise ChartUnparseable(f"'{key}' has {len(values)} values for {n} timestamps")
    try:
        return np.array(values, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError) as exc:
        raise ChartUnparseable(f"'{key}' holds non-numeric values") from exc


# A volume that is not a number at all (a string, a boolean) reads as this impossible count,
# so it is NULL and counted with the other impossible volumes, not a reason to drop the chart.
NOT_A_VOLUME = -1.0


def _volume_column(quote: dict, n: int) -> np.ndarray:
    """Yahoo's volume column as float64 (None -> nan, non-numbers -> NOT_A_VOLUME)."""
    try:
        return _column(quote, "volume", n)
    except ChartUnparseable:
        values = quote.get("volume")
        if values is None or len(values) != n:
            raise

    def number(x: object) -> float:
        if x is None:
            return np.nan
        if isinstance(x, bool) or not isinstance(x, int | float):
            return NOT_A_VOLUME
        return float(x)

    return np.array([number(x) for x in values], dtype=np.float64)


@lru_cache(maxsize=64)
def daily_utc_offsets(tz: str) -> tuple[int, np.ndarray]:
    """The zone's UTC offset (seconds) at 12:00 UTC of every day from 1960 to 2100."""
    zone = ZoneInfo(tz)
    first = datetime(1960, 1, 1, 12, tzinfo=UTC)
    days = (datetime(2100, 1, 1, 12, tzinfo=UTC) - first).days
    offsets = np.fromiter(
        (
            (first + timedelta(days=i)).astimezone(zone).utcoffset().total_seconds()
            for i in range(days)
        ),
        dtype=np.float64,
        count=days,
    ).astype(np.int64)
    return int(first.timestamp()) // 86400, offsets


def trading_days(timestamps: np.ndarray, tz: str = EXCHANGE_TZ_NAME) -> np.ndarray:
    """Epoch seconds -> the exchange's calendar date (datetime64[D]), DST-correct.

    Uses the zone's offset at noon UTC of the stamp's UTC day: exact for every stamp
    except those between midnight UTC and 2 a.m. local on a DST-change Sunday, when no
    exchange trades.
    """
    base, offsets = daily_utc_offsets(tz)
    index = np.clip(timestamps // 86400 - base, 0, len(offsets) - 1)
    local = timestamps + offsets[index]
    return (local // 86400).astype("datetime64[D]")


def _events(result: dict, symbol: str, tz: str, period1: int, period2: int) -> pl.DataFrame:
    events = result.get("events") or {}
    stamps: list[int] = []
    kinds: list[str] = []
    values: list[float] = []
    for item in (events.get("dividends") or {}).values():
        if isinstance(item, dict) and item.get("amount") is not None and item.get("date"):
            stamps.append(int(item["date"]))
            kinds.append("dividend")
            values.append(float(item["amount"]))
    for item in (events.get("splits") or {}).values():
        if not isinstance(item, dict) or not item.get("date"):
            continue
        num, den = item.get("numerator"), item.get("denominator")
        if num is None or not den or float(num) == float(den):
            continue  # a 1:1 "split" (seen around spin-offs) changes no price
        stamps.append(int(item["date"]))
        kinds.append("split")
        values.append(float(num) / float(den))
    days = trading_days(np.array(stamps, dtype=np.int64), tz).astype(object) if stamps else []
    seen: set[tuple] = set()
    rows = []
    for stamp, day, kind, value in zip(stamps, days, kinds, values, strict=True):
        if period1 <= stamp < period2 and (day, kind) not in seen:
            seen.add((day, kind))
            rows.append((symbol, day, kind, value))
    return pl.DataFrame(rows, schema=ACTION_SCHEMA, orient="row")


def _session_end(meta: dict) -> int | None:
    period = meta.get("currentTradingPeriod")
    regular = period.get("regular") if isinstance(period, dict) else None
    end = regular.get("end") if isinstance(regular, dict) else None
    return int(end) if isinstance(end, int | float) else None


def parse_chart(body: bytes, symbol: str, period2: int, period1: int = 0) -> Chart:
    """A 200 response body for [period1, period2) -> a validated Chart; raises
    ChartUnparseable for junk."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        head = body[:40].decode("utf-8", "replace").strip()
        raise ChartUnparseable(f"body is not JSON ({head!r}…)") from exc
    chart = doc.get("chart") if isinstance(doc, dict) else None
    if not isinstance(chart, dict):
        raise ChartUnparseable('body has no chart (e.g. {"chart": null})')
    results = chart.get("result")
    if not results or not isinstance(results, list) or not isinstance(results[0], dict):
        envelope = _envelope_error(doc)
        if envelope and "No data found" in envelope[1]:
            raise ChartNotFound(f"unknown symbol (Yahoo: {envelope[1]})")
        raise ChartUnparseable("chart.result is empty")
    result = results[0]
    meta = result.get("meta") or {}
    tz = _zone_name(meta.get("exchangeTimezoneName"))
    identity = {
        "session_end": _session_end(meta),
        "meta_symbol": _text(meta.get("symbol")),
        "currency": _text(meta.get("currency")),
        "instrument_type": _text(meta.get("instrumentType")),
    }
    actions = _events(result, symbol, tz, period1, period2)
    timestamps = result.get("timestamp") or []
    if not timestamps:
        return Chart(symbol, pl.DataFrame(schema=BAR_SCHEMA), actions, timezone=tz, **identity)

    n = len(timestamps)
    indicators = result.get("indicators") or {}
    quotes = indicators.get("quote") or [{}]
    quote = quotes[0] if quotes and isinstance(quotes[0], dict) else {}
    adj_list = indicators.get("adjclose") or [{}]
    adj_block = adj_list[0] if adj_list and isinstance(adj_list[0], dict) else {}
    try:
        ts = np.array(timestamps, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ChartUnparseable("timestamps are not integers") from exc
    o = _column(quote, "open", n)
    h = _column(quote, "high", n)
    lo = _column(quote, "low", n)
    c = _column(quote, "close", n)
    v = _volume_column(quote, n)
    has_adjclose = adj_block.get("adjclose") is not None
    adj = _column(adj_block, "adjclose", n) if has_adjclose else c.copy()

    dropped_outside = int((ts < period1).sum())
    dropped_unfinished = int((ts >= period2).sum())
    in_window = (ts >= period1) & (ts < period2)
    prices = np.stack([o, h, lo, c, adj])
    has_prices = ~np.isnan(prices).any(axis=0)
    nulls = in_window & ~has_prices
    dropped_null = int(nulls.sum())

    candidates = np.flatnonzero(in_window & has_prices)
    order = candidates[np.argsort(ts[candidates], kind="stable")]
    # A timestamp served twice: the later copy is Yahoo's newer version of the same bar.
    last_of_stamp = np.ones(len(order), dtype=bool)
    last_of_stamp[:-1] = ts[order][1:] != ts[order][:-1]
    dropped_duplicate = int(len(order) - last_of_stamp.sum())
    order = order[last_of_stamp]
    # A date served at two stamps: the earlier is the regular-session bar, a later the live one.
    days = trading_days(ts, tz)
    first_of_day = np.ones(len(order), dtype=bool)
    first_of_day[1:] = days[order][1:] != days[order][:-1]
    dropped_unfinished += int(len(order) - first_of_day.sum())
    order = order[first_of_day]

    with np.errstate(invalid="ignore"):
        valid = (prices > 0).all(axis=0) & (lo <= h) & (c >= lo) & (c <= h)
    dropped_invalid = int((~valid[order]).sum())
    idx = order[valid[order]]
    vol = v[idx]
    # A share count is a whole number in [0, 2^63): -1000, or 2^64 (which int64 would wrap
    # to -2^63), is no volume. NULL, as Yahoo's own missing volumes are, and counted.
    with np.errstate(invalid="ignore"):
        impossible = ~np.isnan(vol) & ~((vol >= 0) & (vol < 2.0**63) & (vol == np.floor(vol)))
    vol = np.where(impossible, np.nan, vol)
    volume_missing = np.isnan(vol)
    bars = pl.DataFrame(
        [
            pl.Series("symbol", [symbol], dtype=pl.String).extend_constant(symbol, len(idx) - 1)
            if len(idx)
            else pl.Series("symbol", [], dtype=pl.String),
            pl.Series("date", days[idx], dtype=pl.Date),
            pl.Series("open", o[idx]),
            pl.Series("high", h[idx]),
            pl.Series("low", lo[idx]),
            pl.Series("close", c[idx]),
            pl.Series("adjclose", adj[idx]),
            pl.Series("volume", np.where(volume_missing, 0.0, vol).astype(np.int64)).scatter(
                np.flatnonzero(volume_missing), None
            )
            if volume_missing.any()
            else pl.Series("volume", vol.astype(np.int64)),
        ]
    )
    return Chart(
        symbol,
        bars,
        actions,
        dropped_null=dropped_null,
        dropped_invalid=dropped_invalid,
        dropped_unfinished=dropped_unfinished,
        dropped_outside=dropped_outside,
        dropped_duplicate=dropped_duplicate,
        timezone=tz,
        invalid_volume=int(impossible.sum()),
        has_adjclose=has_adjclose,
        null_dates=sorted(set(days[nulls].tolist()) - set(days[idx].tolist())),
        **identity,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def check_identity(chart: Chart, asked: str, stored_currency: str | None) -> None:
    """Raise WrongInstrument when the answer names another instrument than `asked` (Yahoo
    upper-cases, so case is ignored) or quotes another currency than the stored history's
    (`stored_currency`; None: nothing stored yet). An answer that names neither passes."""
    if chart.meta_symbol is not None and chart.meta_symbol.upper() != asked.upper():
        raise WrongInstrument(
            f"answer is for another instrument: asked {asked}, Yahoo sent {chart.meta_symbol}; "
            "nothing stored"
        )
    if stored_currency and chart.currency and chart.currency != stored_currency:
        raise WrongInstrument(
            f"currency changed from {stored_currency} (stored history) to {chart.currency}; "
            "nothing stored"
        )


def _zone_name(name: object) -> str:
    """Yahoo's zone name if the zone database knows it, else New York (never a crash)."""
    if not isinstance(name, str) or not name:
        return EXCHANGE_TZ_NAME
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return EXCHANGE_TZ_NAME
    return name


def clip_to_days(chart: Chart, first: date, last: date) -> Chart:
    """The chart with only bars and events dated first..last (dates in its exchange's
    calendar); what falls outside is counted in `dropped_outside`."""
    if _within(chart.bars, first, last) and _within(chart.actions, first, last):
        return chart  # the usual case: no frame is copied
    inside = pl.col("date").is_between(first, last)
    bars = chart.bars.filter(inside)
    return replace(
        chart,
        bars=bars,
        actions=chart.actions.filter(inside),
        dropped_outside=chart.dropped_outside + chart.bars.height - bars.height,
    )


def first_date(chart: Chart) -> date | None:
    return None if chart.bars.is_empty() else chart.bars["date"][0]


def _within(frame: pl.DataFrame, first: date, last: date) -> bool:
    dates = frame["date"]
    return frame.height == 0 or (dates.min() >= first and dates.max() <= last)
