"""Chart parsing and symbol rules, on inputs small enough to check by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from ingest.plan import last_closed_day, ny_midnight, plan_symbol
from ingest.universe import UNIVERSES, normalize_symbol, parse_symbols
from ingest.yahoo import ChartNotFound, ChartUnparseable, classify_error, parse_chart
from stockml.errors import InputError
from stockml.store import IngestState

NY = ZoneInfo("America/New_York")


def stamp(day: date, hour: int = 9, minute: int = 30) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).timestamp())


def body(ts, o, h, lo, c, v, adj=None, events=None) -> bytes:
    result = {
        "meta": {"exchangeTimezoneName": "America/New_York"},
        "timestamp": ts,
        "indicators": {"quote": [{"open": o, "high": h, "low": lo, "close": c, "volume": v}]},
    }
    if adj is not None:
        result["indicators"]["adjclose"] = [{"adjclose": adj}]
    if events:
        result["events"] = events
    return orjson.dumps({"chart": {"result": [result], "error": None}})


FAR = 2_000_000_000


def test_dates_are_new_york_trading_days_across_dst():
    """09:30 New York is 14:30 UTC in winter and 13:30 in summer; both map to that day,
    and a late-evening New York stamp (next day in UTC) stays on its New York day."""
    days = [date(2021, 1, 4), date(2021, 7, 6)]
    ts = [stamp(d) for d in days] + [stamp(date(2021, 7, 7), 21, 0)]
    chart = parse_chart(
        body(ts, [1, 1, 1], [2, 2, 2], [1, 1, 1], [1.5, 1.5, 1.5], [10, 10, 10]), "X", FAR
    )
    assert chart.bars["date"].to_list() == [*days, date(2021, 7, 7)]


def test_null_invalid_late_and_duplicate_rows_are_dropped_and_counted():
    """Null rows, impossible values, the live duplicate and bars past period2 never enter."""
    d = [date(2021, 3, i) for i in (1, 2, 3, 4, 5, 8)]
    ts = [stamp(x) for x in d] + [stamp(d[-1], 15, 59)]
    period2 = stamp(d[-1]) + 3600
    ts.append(period2 + 60)
    o = [10, None, 10, 10, 10, 10, 10, 10]
    h = [11, None, None, 9, 11, 11, 11, 11]  # row 3: high below low
    lo = [9, None, None, 10, 9, 9, 9, 9]
    c = [10, None, None, 10, 12, 10, 10.5, 10.5]  # row 4: close above high
    v = [100, None, 50, 100, 100, 100, 100, 100]  # row 2: volume-only
    chart = parse_chart(body(ts, o, h, lo, c, v), "X", period2)
    assert chart.bars["date"].to_list() == [d[0], d[5]]
    assert chart.bars["close"].to_list() == [10.0, 10.0]  # the 09:30 bar, not the 15:59 one
    assert (chart.dropped_null, chart.dropped_invalid, chart.dropped_unfinished) == (2, 2, 2)


def test_adjclose_falls_back_to_close_and_events_are_parsed():
    """No adjclose block means adjclose = close; dividends and splits become actions."""
    d = date(2021, 3, 1)
    events = {
        "dividends": {"1": {"amount": 0.25, "date": stamp(d)}},
        "splits": {"2": {"date": stamp(d), "numerator": 4, "denominator": 1}},
    }
    chart = parse_chart(body([stamp(d)], [1], [2], [1], [1.5], [5], events=events), "X", FAR)
    assert chart.bars["adjclose"].to_list() == [1.5]
    assert sorted(chart.actions.select("kind", "value").rows()) == [
        ("dividend", 0.25),
        ("split", 4.0),
    ]


def test_empty_window_gives_no_rows():
    """Yahoo's empty window (meta only, empty quote) is zero rows, not an error."""
    doc = {"chart": {"result": [{"meta": {}, "indicators": {"quote": [{}], "adjclose": [{}]}}]}}
    assert parse_chart(orjson.dumps(doc), "X", FAR).bars.is_empty()


@pytest.mark.parametrize(
    "raw",
    [b"<html>oops</html>", b'{"chart": null}', b'{"chart":{"result":[{"meta":', b"", b"[]"],
)
def test_junk_bodies_are_unparseable_and_retryable(raw):
    """HTML, a null chart, truncated JSON: errors the client retries."""
    with pytest.raises(ChartUnparseable) as err:
        parse_chart(raw, "X", FAR)
    assert err.value.retryable


def test_404_is_not_found_and_not_retryable():
    """Yahoo's 404 envelope means an unknown symbol: not retried."""
    raw = b'{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found"}}}'
    error = classify_error(404, raw)
    assert isinstance(error, ChartNotFound) and not error.retryable


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("aapl", "AAPL"),
        ("BRK.B", "BRK-B"),
        (" bf.b ", "BF-B"),
        ("^GSPC", "^GSPC"),
        ("SAP.DE", "SAP.DE"),
    ],
)
def test_symbols_are_normalised(raw, expected):
    """Tickers take Yahoo's spelling: upper case, class shares with a dash."""
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["AA$PL", "", "../etc", "A B", "TOOLONGTICKERNAME"])
def test_malformed_symbols_are_rejected(raw):
    """Anything that cannot be a ticker is refused before any request."""
    with pytest.raises(InputError, match="malformed symbol"):
        normalize_symbol(raw)


def test_built_in_universes():
    """full: 82 distinct symbols, AAPL first, all 11 sectors; quick: 20 of them, all sectors."""
    from ingest.universe import LISTINGS

    sectors = {x.symbol: x.sector for x in LISTINGS}
    assert len(UNIVERSES["full"]) == len(set(UNIVERSES["full"])) == 82
    assert UNIVERSES["full"][0] == "AAPL"
    assert len({sectors[s] for s in UNIVERSES["full"]}) == 11
    assert len(UNIVERSES["quick"]) == 20 and set(UNIVERSES["quick"]) <= set(UNIVERSES["full"])
    assert len({sectors[s] for s in UNIVERSES["quick"]}) == 11
    assert parse_symbols("msft, brk.b,MSFT") == ["MSFT", "BRK-B"]


def test_today_is_not_a_closed_day_until_the_evening():
    """Before 20:00 New York, --end today means yesterday: the live bar is never asked for."""
    today = date(2024, 6, 12)
    morning = datetime(2024, 6, 12, 11, 0, tzinfo=NY)
    evening = datetime(2024, 6, 12, 21, 0, tzinfo=NY)
    assert last_closed_day(today, morning) == today - timedelta(days=1)
    assert last_closed_day(today, evening) == today
    assert ny_midnight(date(2024, 6, 13)) - ny_midnight(today) == 86400


def test_resume_plan():
    """Nothing stored: full; covered: skip; stored but short, or failed last time:
    incremental from an overlap; earlier history wanted than stored: full."""
    start, end = date(2020, 1, 1), date(2021, 1, 1)
    ok = IngestState(status="ok", fetched_from=start, fetched_through=end, last_date=end, rows=9)
    assert plan_symbol(None, start, end).kind == "full"
    assert plan_symbol(ok, start, end).kind == "skip"
    later = plan_symbol(ok, start, date(2021, 2, 1))
    assert later.kind == "incremental" and later.since == end - timedelta(days=10)
    assert plan_symbol(ok, date(2019, 1, 1), end).kind == "full"
    empty = replace(ok, rows=0)
    assert plan_symbol(empty, start, end).kind == "skip"  # an empty window is not refetched
    failed = replace(ok, status="failed")
    assert plan_symbol(failed, start, end).kind == "incremental"
