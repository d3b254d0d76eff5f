"""Data from the field (issue 16): stray and repeated bars, exchange suffixes, and windows
and final sessions decided in the exchange's own time zone. Each case runs the real
ingester against a crafted chart server on 127.0.0.1 or writes a real DuckDB file."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from ingest.client import FetchPolicy
from ingest.plan import fetch_start_for, local_midnight
from ingest.run import IngestRequest, IngestResult, run_ingest
from ingest.universe import exchange_timezone, normalize_symbol, parse_symbols
from ingest.writer import BatchWriter
from ingest.yahoo import ACTION_SCHEMA, BAR_SCHEMA, parse_chart
from stockml import store
from stockml.store.prices import WriteFailed
from tests.ingest_support import (
    CraftedListing,
    CraftedServer,
    chart_body,
    serving_crafted,
    table,
    weekdays,
)

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
HISTORY = weekdays(date(2022, 1, 3), date(2024, 3, 8))


def run(db: Path, base_url: str, symbols: list[str], start: date, end: date, now: datetime):
    policy = FetchPolicy(base_url=base_url, rate=200.0, concurrency=8, timeout=5.0, retries=1)
    request = IngestRequest(symbols, start, end, db, policy, progress=False, now=now)
    return run_ingest(request)


def stored(db: Path, symbol: str) -> pl.DataFrame:
    return table(db, f"SELECT date, close FROM prices WHERE symbol = '{symbol}' ORDER BY date")


def status(db: Path, symbol: str) -> dict:
    sql = f"SELECT * FROM ingest_status WHERE symbol = '{symbol}'"
    return table(db, sql).to_dicts()[0]


# -- 1. a stray bar before period1, repeated bars, one bad write in a batch --


def test_stray_bar_before_the_window_does_not_wedge_an_update_or_its_neighbours(tmp_path):
    """An update whose answer also holds the bar just before period1 stores every day
    exactly once, for that symbol and the eight committed beside it, on every rerun."""
    symbols = [f"S{i}" for i in range(8)] + ["STRAY"]
    server = CraftedServer({s: CraftedListing("America/New_York", HISTORY) for s in symbols})
    db = tmp_path / "s.duckdb"
    start, now = date(2023, 6, 1), datetime(2024, 3, 20, 12, 0, tzinfo=NY)
    with serving_crafted(server) as srv:
        run(db, srv.base_url, symbols, start, date(2024, 2, 29), now)
        server.stray_before.add("STRAY")
        result = run(db, srv.base_url, symbols, start, date(2024, 3, 8), now)
        assert server.requests[-1][1] == local_midnight(date(2024, 2, 19))  # incremental
        rerun = run(db, srv.base_url, symbols, start, date(2024, 3, 8), now)
    assert {r.status for r in result.results.values()} == {"ok"}
    assert {r.status for r in rerun.results.values()} == {"up-to-date"}
    expected = weekdays(fetch_start_for(start), date(2024, 3, 8))
    listing = server.listings["STRAY"]
    for symbol in symbols:
        rows = stored(db, symbol)
        assert rows["date"].to_list() == expected
        assert rows["close"].to_list() == [listing.close(d) for d in expected]
        assert status(db, symbol)["status"] == "ok"


def test_bars_outside_the_window_or_repeated_are_dropped_and_counted():
    """A bar before period1 is dropped (dropped_outside); a timestamp served twice keeps
    its last copy (dropped_duplicate); out-of-order stamps come out sorted."""
    days = [date(2024, 3, d) for d in (4, 5, 6, 7)]
    ts = [int(datetime.combine(d, time(9, 30), tzinfo=NY).timestamp()) for d in days]
    served = [ts[0], ts[2], ts[1], ts[2], ts[3]]
    closes = [1.0, 3.0, 2.0, 3.5, 4.0]
    body = chart_body({"exchangeTimezoneName": "America/New_York"}, served, closes)
    chart = parse_chart(body, "X", period2=ts[3] + 3600, period1=ts[1] - 3600)
    assert chart.bars["date"].to_list() == days[1:]
    assert chart.bars["close"].to_list() == [2.0, 3.5, 4.0]
    assert (chart.dropped_outside, chart.dropped_duplicate) == (1, 1)


def _bars(symbol: str, days: list[date], open_price: float | None = 10.0) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": days,
            "open": [open_price] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [10.0] * n,
            "adjclose": [10.0] * n,
            "volume": [5] * n,
        },
        schema=BAR_SCHEMA,
    )


def _write(symbol: str, bars: pl.DataFrame, replace_from: date | None = None) -> store.SymbolWrite:
    first = bars["date"].min() if bars.height else None
    return store.SymbolWrite(
        symbol,
        1,
        "aiohttp",
        bars=bars,
        actions=pl.DataFrame(schema=ACTION_SCHEMA),
        replace_from=replace_from,
        fetched_from=first,
        fetched_through=bars["date"].max() if bars.height else None,
        first_write=replace_from is None,
    )


def test_a_write_never_collides_with_the_rows_it_keeps(tmp_path):
    """An update handed a bar before replace_from and a date twice stores each date once,
    the later copy winning, in a real DuckDB file."""
    con = store.connect(tmp_path / "w.duckdb")
    days = weekdays(date(2024, 3, 4), date(2024, 3, 8))
    store.write_batch(con, [_write("X", _bars("X", days))])
    update = pl.concat([_bars("X", days[1:3], 12.0), _bars("X", days[2:3], 10.5)])
    rows = store.write_batch(con, [_write("X", update, replace_from=days[2])])
    got = con.execute("SELECT date, open FROM prices WHERE symbol='X' ORDER BY date").fetchall()
    con.close()
    assert rows == {"X": 3}
    assert got == [(days[0], 10.0), (days[1], 10.0), (days[2], 10.5)]


def test_a_failed_batch_write_names_the_real_cause(tmp_path):
    """A write DuckDB refuses reports the constraint it broke, not 'transaction is aborted'."""
    con = store.connect(tmp_path / "w.duckdb")
    bad = _write("BAD", _bars("BAD", [date(2024, 3, 4)], open_price=None))
    with pytest.raises(WriteFailed, match=r"NOT NULL constraint failed: prices\.open") as info:
        store.write_batch(con, [bad])
    con.close()
    assert "aborted" not in str(info.value)


def test_one_bad_write_does_not_fail_its_batch_neighbours(tmp_path):
    """Outcomes committed together are retried one by one when their transaction fails:
    the good symbol is stored (5 rows), only the bad one fails, with DuckDB's reason."""
    db = tmp_path / "b.duckdb"
    con = store.connect(db)
    days = weekdays(date(2024, 3, 4), date(2024, 3, 8))
    good = _write("GOOD", _bars("GOOD", days))
    bad = _write("BAD", _bars("BAD", days, open_price=None))

    async def both():
        writer = BatchWriter(con)
        submits = [asyncio.create_task(writer.submit(w)) for w in (good, bad)]
        await asyncio.sleep(0)  # both outcomes wait in the queue: one batch
        loop = asyncio.create_task(writer.run())
        try:
            return await asyncio.gather(*submits, return_exceptions=True)
        finally:
            loop.cancel()
            writer.shutdown()

    good_rows, bad_error = asyncio.run(both())
    count = con.execute("SELECT count(*) FROM prices WHERE symbol='GOOD'").fetchone()[0]
    con.close()
    assert good_rows == 5 and count == 5
    assert isinstance(bad_error, WriteFailed) and "NOT NULL" in str(bad_error)


# -- 2. exchange suffixes reach Yahoo as typed; US class shares take the dash --


@pytest.mark.parametrize(
    ("raw", "expected", "zone"),
    [
        ("BARC.L", "BARC.L", "Europe/London"),
        ("vod.l", "VOD.L", "Europe/London"),
        ("SAP.F", "SAP.F", "Europe/Berlin"),
        ("ABX.V", "ABX.V", "America/Toronto"),
        ("7203.T", "7203.T", "Asia/Tokyo"),
        ("RY.TO", "RY.TO", "America/Toronto"),
        ("BHP.AX", "BHP.AX", "Australia/Sydney"),
        ("0005.HK", "0005.HK", "Asia/Hong_Kong"),
        ("2330.TW", "2330.TW", "Asia/Taipei"),
        ("BRK.B", "BRK-B", "America/New_York"),
        ("bf.b", "BF-B", "America/New_York"),
        ("XYZ-V", "XYZ-V", "America/New_York"),  # a US class V share is typed with the dash
    ],
)
def test_exchange_suffixes_are_kept_and_class_shares_dashed(raw, expected, zone):
    """A known exchange suffix stays as typed (and names the zone); a US class letter
    takes Yahoo's dash."""
    assert normalize_symbol(raw) == expected
    assert exchange_timezone(expected) == zone


def test_symbols_reach_yahoo_as_yahoo_spells_them(tmp_path):
    """--symbols BARC.L,VOD.L,SAP.F,ABX.V,BRK.B requests exactly those paths (BRK-B
    dashed) and stores every one."""
    zones = {"BARC.L": "Europe/London", "VOD.L": "Europe/London", "SAP.F": "Europe/Berlin"}
    zones |= {"ABX.V": "America/Toronto", "BRK-B": "America/New_York"}
    server = CraftedServer({s: CraftedListing(z, HISTORY, time(10, 0)) for s, z in zones.items()})
    db = tmp_path / "x.duckdb"
    symbols = parse_symbols("BARC.L,VOD.L,SAP.F,ABX.V,BRK.B")
    with serving_crafted(server) as srv:
        now = datetime(2024, 3, 20, 12, 0, tzinfo=NY)
        result: IngestResult = run(
            db, srv.base_url, symbols, date(2024, 1, 2), date(2024, 3, 8), now
        )
    paths = {p for p, _, _ in server.requests}
    assert paths == {f"/v8/finance/chart/{s}" for s in zones}
    assert {r.status for r in result.results.values()} == {"ok"}
    assert stored(db, "BARC.L")["date"][-1] == date(2024, 3, 8)


# -- 3. dates, windows and final sessions in the exchange's own time zone --


def test_tokyo_end_date_is_a_tokyo_day(tmp_path):
    """7203.T (bars at 09:00 JST) with --end 2024-03-06 stores through 2024-03-06 and not
    the 03-07 bar stamped before New York midnight; the window is Tokyo's midnights."""
    listing = CraftedListing("Asia/Tokyo", HISTORY, time(9, 0))
    server = CraftedServer({"7203.T": listing})
    db = tmp_path / "t.duckdb"
    start, end = date(2024, 1, 4), date(2024, 3, 6)
    with serving_crafted(server) as srv:
        run(db, srv.base_url, ["7203.T"], start, end, datetime(2024, 3, 20, 12, 0, tzinfo=NY))
    rows = stored(db, "7203.T")
    assert rows["date"].to_list() == weekdays(fetch_start_for(start), end)
    assert rows["close"][-1] == listing.close(end)
    assert status(db, "7203.T")["fetched_through"] == end
    (_, period1, period2), *_ = server.requests
    assert period1 == local_midnight(fetch_start_for(start), "Asia/Tokyo")
    assert period2 == local_midnight(date(2024, 3, 7), "Asia/Tokyo")


def test_a_tokyo_session_in_progress_is_not_stored_in_the_new_york_evening(tmp_path):
    """At 21:00 New York on 03-06 (11:00 on 03-07 in Tokyo), --end 03-07 stores Tokyo
    through 03-06 while New York's 03-06 is final; at 20:00 Tokyo the 03-07 session is."""
    server = CraftedServer(
        {
            "7203.T": CraftedListing("Asia/Tokyo", HISTORY, time(9, 0)),
            "XMPL": CraftedListing("America/New_York", HISTORY),
        }
    )
    db = tmp_path / "t.duckdb"
    start, end = date(2024, 1, 4), date(2024, 3, 7)
    with serving_crafted(server) as srv:
        evening = datetime(2024, 3, 6, 21, 0, tzinfo=NY)
        run(db, srv.base_url, ["7203.T", "XMPL"], start, end, evening)
        assert stored(db, "7203.T")["date"][-1] == date(2024, 3, 6)
        assert status(db, "7203.T")["fetched_through"] == date(2024, 3, 6)
        assert stored(db, "XMPL")["date"][-1] == date(2024, 3, 6)
        tokyo_evening = datetime(2024, 3, 7, 20, 0, tzinfo=TOKYO)
        later = run(db, srv.base_url, ["7203.T", "XMPL"], start, end, tokyo_evening)
    assert stored(db, "7203.T")["date"][-1] == date(2024, 3, 7)
    assert later.results["XMPL"].status == "up-to-date"


def test_a_session_yahoo_says_is_still_open_is_not_final(tmp_path):
    """When the chart's currentTradingPeriod.regular.end (here 17:00 JST) plus the margin
    is still ahead, that day's bar is left out even if the close-hour table says final."""
    session_end = int(datetime(2024, 3, 7, 17, 0, tzinfo=TOKYO).timestamp())
    listing = CraftedListing("Asia/Tokyo", HISTORY, time(9, 0), session_end=session_end)
    server = CraftedServer({"7203.T": listing})
    db = tmp_path / "t.duckdb"
    with serving_crafted(server) as srv:
        now = datetime(2024, 3, 7, 20, 0, tzinfo=TOKYO)
        run(db, srv.base_url, ["7203.T"], date(2024, 1, 4), date(2024, 3, 7), now)
    assert stored(db, "7203.T")["date"][-1] == date(2024, 3, 6)
    assert status(db, "7203.T")["fetched_through"] == date(2024, 3, 6)
