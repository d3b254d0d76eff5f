"""Data from the field, round two (issue 25): answers for another instrument, impossible
volumes, symbols with `&`, holes Yahoo fills later, corporate actions that do not line up,
and a delisted symbol that must stop failing every run. Each case runs the real ingester
(in process, or the real CLI) against a chart server on 127.0.0.1 and reads a real DuckDB
file."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from backtest.labels import PROFILES, compute_labels
from ingest.client import FetchPolicy
from ingest.plan import fetch_start_for
from ingest.quality import check_history
from ingest.run import IngestRequest, run_ingest
from ingest.universe import read_universe
from ingest.yahoo import ACTION_SCHEMA, BAR_SCHEMA, parse_chart
from stockml.errors import IngestIncomplete, InputError
from stockml.store.holes import HOLE_CHECKS
from tests.ingest_support import (
    CraftedListing,
    CraftedServer,
    chart_body,
    fresh_market,
    load_market,
    served_bars,
    serving,
    serving_crafted,
    table,
    weekdays,
)

NY = ZoneInfo("America/New_York")
HISTORY = weekdays(date(2022, 1, 3), date(2024, 3, 8))
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=NY)
START, END = date(2023, 12, 1), date(2024, 3, 8)
ROOT = Path(__file__).resolve().parent.parent


def run(db: Path, base_url: str, symbols: list[str], end: date = END, **kwargs):
    policy = FetchPolicy(base_url=base_url, rate=200.0, concurrency=8, timeout=5.0, retries=1)
    request = IngestRequest(symbols, START, end, db, policy, progress=False, now=NOW, **kwargs)
    return run_ingest(request)


def listing(**shape) -> CraftedListing:
    return CraftedListing("America/New_York", HISTORY, **shape)


def status(db: Path, symbol: str) -> dict:
    return table(db, f"SELECT * FROM ingest_status WHERE symbol = '{symbol}'").to_dicts()[0]


def rows(db: Path, symbol: str) -> pl.DataFrame:
    sql = (
        f"SELECT date, close, adjclose, volume FROM prices WHERE symbol = '{symbol}' ORDER BY date"
    )
    return table(db, sql)


# -- 6. an answer for another instrument --


def test_an_answer_naming_another_instrument_fails_and_stores_nothing(tmp_path):
    """XYZ answered with MSFT's chart (meta.symbol MSFT): failed with that reason, no row
    stored under XYZ; its neighbour is stored as usual."""
    server = CraftedServer({"XYZ": listing(meta={"symbol": "MSFT"}), "GOOD": listing()})
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv, pytest.raises(IngestIncomplete, match="1 of 2"):
        run(db, srv.base_url, ["XYZ", "GOOD"])
    row = status(db, "XYZ")
    assert row["status"] == "failed"
    assert (
        row["error"]
        == "answer is for another instrument: asked XYZ, Yahoo sent MSFT; nothing stored"
    )
    assert rows(db, "XYZ").is_empty()
    assert status(db, "GOOD")["status"] == "ok" and status(db, "GOOD")["currency"] is None


def test_a_currency_change_against_the_stored_history_fails_and_keeps_it(tmp_path):
    """Stored in USD; a later answer in EUR is refused: the 50 stored rows stay as they
    were, the reason names both currencies."""
    shown = listing(meta={"currency": "USD"})
    server = CraftedServer({"XMPL": shown})
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        run(db, srv.base_url, ["XMPL"], end=date(2024, 2, 29))
        before = rows(db, "XMPL")
        assert status(db, "XMPL")["currency"] == "USD"
        shown.meta["currency"] = "EUR"
        with pytest.raises(IngestIncomplete):
            run(db, srv.base_url, ["XMPL"])
    row = status(db, "XMPL")
    assert row["error"] == "currency changed from USD (stored history) to EUR; nothing stored"
    assert (row["status"], row["currency"], row["rows"]) == ("failed", "USD", before.height)
    assert rows(db, "XMPL").equals(before)


# -- 7. impossible volumes --


def test_impossible_volumes_are_null_and_counted(tmp_path):
    """A volume of -1000 and one of 2^64 (which int64 wraps to -2^63) are stored as NULL
    and counted in invalid_volume; their bars and every other volume are kept."""
    bad = {date(2024, 3, 4): -1000, date(2024, 3, 5): 2**64}
    server = CraftedServer({"VOL": listing(volumes=bad)})
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        run(db, srv.base_url, ["VOL"])
    stored = rows(db, "VOL")
    nulls = stored.filter(pl.col("volume").is_null())["date"].to_list()
    assert nulls == sorted(bad)
    assert stored.filter(pl.col("volume").is_not_null())["volume"].unique().to_list() == [1000]
    assert stored["date"].to_list() == weekdays(fetch_start_for(START), END)
    assert status(db, "VOL")["invalid_volume"] == 2


def test_a_fractional_or_negative_volume_is_no_volume():
    """The parser's rule on its own: whole numbers in [0, 2^63) only; a volume that is no
    number at all is NULL and counted too, the chart kept."""
    days = weekdays(date(2024, 3, 4), date(2024, 3, 8))
    stamps = [int(datetime.combine(d, time(9, 30), tzinfo=NY).timestamp()) for d in days]
    volumes = [0, 12.5, -1, 2**63, 2**63 - 1024]
    body = chart_body({"exchangeTimezoneName": "America/New_York"}, stamps, [10.0] * 5, volumes)
    chart = parse_chart(body, "X", period2=stamps[-1] + 3600)
    assert chart.bars["volume"].to_list() == [0, None, None, None, 2**63 - 1024]
    assert chart.invalid_volume == 3
    odd = chart_body({}, stamps, [10.0] * 5, [1, "n/a", True, None, 5])
    chart = parse_chart(odd, "X", period2=stamps[-1] + 3600)
    assert chart.bars["volume"].to_list() == [1, None, None, None, 5]
    assert (chart.invalid_volume, chart.bars.height) == (2, 5)


# -- 8. symbols Yahoo spells with & --


def test_symbols_with_an_ampersand_are_fetched_url_encoded(tmp_path):
    """A universe file with M&M.NS and L&TFH.NS: both requested as %26 in the path and
    stored under their own names."""
    zone = "Asia/Kolkata"
    server = CraftedServer(
        {s: CraftedListing(zone, HISTORY, time(9, 15)) for s in ("M&M.NS", "L&TFH.NS")}
    )
    universe = tmp_path / "india.txt"
    universe.write_text("# two NSE listings\nM&M.NS\nl&tfh.ns\n")
    db = tmp_path / "s.duckdb"
    symbols = read_universe(str(universe)).symbols
    assert symbols == ["M&M.NS", "L&TFH.NS"]
    with serving_crafted(server) as srv:
        result = run(db, srv.base_url, symbols)
    assert {r.status for r in result.results.values()} == {"ok"}
    assert {p for p, _, _ in server.requests} == {
        "/v8/finance/chart/M%26M.NS",
        "/v8/finance/chart/L%26TFH.NS",
    }
    assert rows(db, "L&TFH.NS")["date"][-1] == END


def test_a_malformed_universe_line_is_named_with_its_number(tmp_path):
    """One bad line names the file and its line; the others are not the problem."""
    universe = tmp_path / "u.csv"
    universe.write_text("symbol,sector\nM&M.NS,Consumer Discretionary\nBAD TICKER,Energy\n")
    with pytest.raises(InputError, match=r"u\.csv line 3: malformed symbol 'BAD TICKER'"):
        read_universe(str(universe))


# -- 5. holes Yahoo fills later --


def _peers(**shape) -> dict[str, CraftedListing]:
    return {"HOLE": listing(**shape), "P1": listing(), "P2": listing()}


@pytest.mark.parametrize("kind", ["null", "missing"])
def test_a_hole_yahoo_fills_later_is_stored_on_the_next_run(tmp_path, kind):
    """2024-03-06 served null (or left out while its peers have it) on the first run, then
    backfilled: the next run with the same --end is not 'up to date', reaches back to the
    hole, stores the day, and price_holes says it was filled."""
    day = date(2024, 3, 6)
    shape = {"null_days": {day}} if kind == "null" else {"missing_days": {day}}
    server = CraftedServer(_peers(**shape))
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        run(db, srv.base_url, ["HOLE", "P1", "P2"])
        assert day not in rows(db, "HOLE")["date"].to_list()
        holes = table(db, "SELECT symbol, date, kind, status, checks FROM price_holes")
        assert holes.rows() == [("HOLE", day, kind, "open", 1)]
        if kind == "null":
            assert status(db, "HOLE")["dropped_null"] == 1
        server.listings["HOLE"] = listing()  # Yahoo backfilled the day
        later = run(db, srv.base_url, ["HOLE", "P1", "P2"])
    assert later.results["HOLE"].status == "ok"
    assert {later.results[p].status for p in ("P1", "P2")} == {"up-to-date"}
    assert day in rows(db, "HOLE")["date"].to_list()
    assert rows(db, "HOLE")["date"].to_list() == weekdays(fetch_start_for(START), END)
    assert table(db, "SELECT status, checks FROM price_holes").rows() == [("filled", 1)]


def test_a_hole_never_filled_becomes_permanent_and_costs_no_more_requests(tmp_path):
    """A day left null on every answer is asked for HOLE_CHECKS times, then declared
    permanent (the record stays); the next run is 'up to date' without a request."""
    server = CraftedServer(_peers(null_days={date(2024, 3, 6)}))
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        for _ in range(HOLE_CHECKS):
            run(db, srv.base_url, ["HOLE"])
        assert table(db, "SELECT status, checks FROM price_holes").rows() == [
            ("permanent", HOLE_CHECKS)
        ]
        asked = len(server.requests)
        last = run(db, srv.base_url, ["HOLE"])
    assert last.results["HOLE"].status == "up-to-date" and len(server.requests) == asked


def test_an_old_gap_is_recorded_as_permanent_at_once(tmp_path):
    """A null day 17 months before the newest one is kept as a record, not refetched."""
    server = CraftedServer(_peers(null_days={date(2022, 10, 3)}))
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        run(db, srv.base_url, ["HOLE"])
        again = run(db, srv.base_url, ["HOLE"])
    assert table(db, "SELECT status FROM price_holes").rows() == [("permanent",)]
    assert again.results["HOLE"].status == "up-to-date"


# -- 4. corporate actions that do not line up --

SWING = PROFILES["swing"]


def _cliff_bars(ratio: float = 2.0) -> pl.DataFrame:
    """30 quiet weekdays around 100, then 30 around 100 / ratio: an unadjusted split."""
    rng = np.random.default_rng(3)
    closes = np.concatenate([np.full(30, 100.0), np.full(30, 100.0 / ratio)])
    closes *= np.cumprod(1 + rng.uniform(-0.003, 0.003, 60))
    days = weekdays(date(2024, 1, 1), date(2024, 4, 30))[:60]
    return pl.DataFrame(
        {
            "symbol": "S",
            "date": days,
            "open": closes,
            "high": closes * 1.005,
            "low": closes * 0.995,
            "close": closes,
            "adjclose": closes,
            "volume": np.full(60, 1_000_000, dtype=np.int64),
        },
        schema=BAR_SCHEMA,
    )


@pytest.mark.parametrize(
    ("event_offset", "ratio", "why"),
    [
        (0, 2.0, "the exact day (as before)"),
        (-1, 2.0, "a day early"),
        (-3, 2.0, "the Sunday before (a Monday cliff)"),
        (0, 0.5, "the ratio inverted (1:2 reported for a 2:1 split)"),
        (-1, 0.5, "a day early and inverted"),
    ],
)
def test_an_unadjusted_split_is_repaired_when_its_event_does_not_line_up(event_offset, ratio, why):
    """The -50 % cliff of an unapplied 2:1 split is repaired (earlier bars halved, volume
    doubled) whichever way Yahoo misdates or inverts the event; no false loss is left."""
    bars = _cliff_bars()
    cliff = bars["date"][30]
    if event_offset == -3:
        assert cliff.weekday() == 0, "the cliff must be a Monday for this case"
    event = cliff + timedelta(days=event_offset)
    actions = pl.DataFrame([("S", event, "split", ratio)], schema=ACTION_SCHEMA, orient="row")
    false_losses = compute_labels(bars, SWING).filter(pl.col("label") == -1).height
    assert false_losses >= 12  # the bug, as the issue found it

    repaired, findings = check_history(bars, actions)

    assert [(f.date, f.kind, f.action) for f in findings] == [
        (cliff, "unadjusted_split", "repaired")
    ], why
    assert repaired["close"][:30].to_list() == pytest.approx((bars["close"][:30] / 2).to_list())
    assert repaired["volume"][:30].to_list() == [2_000_000] * 30
    assert compute_labels(repaired, SWING).filter(pl.col("label") == -1).is_empty()


def test_a_one_for_one_split_is_no_event():
    """A 1:1 split is neither flagged nor kept as an event (so it forces no refetch)."""
    bars = _cliff_bars(ratio=1.0)
    actions = pl.DataFrame(
        [("S", bars["date"][30], "split", 1.0)], schema=ACTION_SCHEMA, orient="row"
    )
    assert check_history(bars, actions) == (bars, [])
    stamp = int(datetime.combine(bars["date"][30], time(9, 30), tzinfo=NY).timestamp())
    events = {"splits": {str(stamp): {"date": stamp, "numerator": 1, "denominator": 1}}}
    body = chart_body({}, [stamp], [10.0], events=events)
    assert parse_chart(body, "S", period2=stamp + 3600).actions.is_empty()


def test_a_misdated_unapplied_split_is_repaired_end_to_end(sp500_parquet, tmp_path):
    """AAPL's 4:1 split of 2020-08-31 served unapplied with the event dated the Sunday
    before: the stored history is Yahoo's adjusted one (to 1e-9) with a repaired flag."""
    base = load_market(sp500_parquet, ["AAPL"])
    market = fresh_market(base)
    series = market.series["AAPL"]
    split_day = np.datetime64("2020-08-31", "D")
    before = series.dates < split_day
    first = fetch_start_for(date(2020, 6, 1))
    original = served_bars(base, "AAPL", first, date(2021, 3, 31))
    for column in (series.open, series.high, series.low, series.close, series.adjclose):
        column[before] *= 4
    series.volume[before] = series.volume[before] // 4
    del series.splits[split_day]
    series.splits[np.datetime64("2020-08-30", "D")] = 4.0
    db = tmp_path / "s.duckdb"
    with serving(market) as srv:
        policy = FetchPolicy(base_url=srv.base_url, rate=200.0, retries=1)
        run_ingest(
            IngestRequest(["AAPL"], date(2020, 6, 1), date(2021, 3, 31), db, policy, progress=False)
        )
    stored = table(db, "SELECT date, close, adjclose FROM prices ORDER BY date")
    assert stored["date"].to_list() == original["date"].to_list()
    assert stored["close"].to_list() == pytest.approx(original["close"].to_list(), rel=1e-9)
    assert stored["adjclose"].to_list() == pytest.approx(original["adjclose"].to_list(), rel=1e-9)
    flags = table(db, "SELECT date, kind, action, detail FROM price_flags").rows()
    assert [(d, k, a) for d, k, a, _ in flags] == [
        (date(2020, 8, 31), "unadjusted_split", "repaired")
    ]
    assert "dated 2020-08-30" in flags[0][3]


def test_a_missing_adjclose_is_rebuilt_from_dividends_and_replaced_when_yahoo_sends_it(
    sp500_parquet, tmp_path
):
    """KO served without adjclose (its dividends reported): the stored adjclose is rebuilt
    from close and dividends (daily returns within 5e-4 of Yahoo's, whose own adjustment of
    this data set differs a little from the CRSP method; adjclose = close misses by 0.5 %+),
    flagged missing_adjclose; the next run, with adjclose back, replaces the whole history
    with Yahoo's values exactly and drops the flag."""
    market = load_market(sp500_parquet, ["KO"])
    db = tmp_path / "s.duckdb"
    start, end = date(2019, 6, 3), date(2021, 3, 31)

    def ingest_ko(last: date):
        policy = FetchPolicy(base_url=srv.base_url, rate=200.0, retries=1)
        run_ingest(IngestRequest(["KO"], start, last, db, policy, progress=False))

    yahoo = served_bars(market, "KO", fetch_start_for(start), end)
    with serving(market, faults="KO=no_adjclose*") as srv:
        ingest_ko(date(2021, 3, 15))
    stored = rows(db, "KO")
    served = yahoo.filter(pl.col("date") <= date(2021, 3, 15))
    returns = lambda s: np.diff(np.log(s.to_numpy()))  # noqa: E731
    assert stored["close"].to_list() == served["close"].to_list()
    assert np.max(np.abs(returns(stored["adjclose"]) - returns(served["adjclose"]))) < 5e-4
    naive = np.max(np.abs(returns(served["close"]) - returns(served["adjclose"])))
    assert naive > 0.005  # adjclose = close would miss every ex-date's drop
    flags = table(db, "SELECT kind, action FROM price_flags").rows()
    assert flags == [("missing_adjclose", "repaired")]

    with serving(market) as srv:
        ingest_ko(end)
    assert rows(db, "KO")["adjclose"].to_list() == yahoo["adjclose"].to_list()
    assert table(db, "SELECT * FROM price_flags").is_empty()


def test_a_one_for_one_split_in_the_overlap_forces_no_refetch(sp500_parquet, tmp_path):
    """A 1:1 split event appearing inside an update's overlap is no re-adjustment."""
    market = fresh_market(load_market(sp500_parquet, ["ADBE"]))
    db = tmp_path / "s.duckdb"
    with serving(market) as srv:
        policy = FetchPolicy(base_url=srv.base_url, rate=200.0, retries=1)
        ask = lambda last: run_ingest(  # noqa: E731
            IngestRequest(["ADBE"], date(2020, 6, 1), last, db, policy, progress=False)
        )
        ask(date(2021, 3, 19))
        market.series["ADBE"].splits[np.datetime64("2021-03-16", "D")] = 1.0
        result = ask(date(2021, 3, 31))
    assert result.results["ADBE"].status == "ok" and not result.results["ADBE"].refetched
    assert table(db, "SELECT * FROM price_flags").is_empty()
    assert table(db, "SELECT * FROM corporate_actions WHERE kind = 'split'").is_empty()


# -- 3 (ingest side). a symbol Yahoo answers 404 for, run after run --


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", "ingest", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_delisted_symbol_becomes_inactive_said_once_and_stops_failing_runs(tmp_path):
    """FB stored, then renamed (Yahoo answers 404): the next two runs exit 4 naming it; the
    third says once that FB is now inactive and exits 0; the fourth makes no request for it
    and says nothing of it. ingest_status keeps its rows and says why."""
    server = CraftedServer({"FB": listing(), "AAPL": listing()})
    db = tmp_path / "s.duckdb"
    args = ["--symbols", "FB,AAPL", "--start", "2024-01-02", "--db", str(db)]
    with serving_crafted(server) as srv:
        args += ["--base-url", srv.base_url, "--rate", "100", "--retries", "0"]
        assert _cli(*args, "--end", "2024-03-01").returncode == 0
        args += ["--end", "2024-03-08"]
        stored = status(db, "FB")["rows"]
        del server.listings["FB"]  # renamed to META: Yahoo knows FB no more
        outcomes = [_cli(*args) for _ in range(3)]
        asked = len(server.requests)
        fourth = _cli(*args)
        fb_requests = [p for p, _, _ in server.requests[asked:] if p.endswith("/FB")]
    assert [p.returncode for p in outcomes] == [4, 4, 0]
    assert all("FB" in p.stderr for p in outcomes[:2])
    third = outcomes[2].stdout + outcomes[2].stderr
    said = [line for line in third.splitlines() if "FB is now inactive" in line]
    assert len(said) == 1 and "404 on 3 consecutive runs" in said[0]
    assert fourth.returncode == 0 and fb_requests == []
    assert "FB" not in fourth.stdout + fourth.stderr
    row = status(db, "FB")
    assert (row["status"], row["not_found_runs"], row["rows"]) == ("inactive", 3, stored)
    assert "no longer requested" in row["error"]


def test_an_inactive_symbol_is_asked_again_on_request_and_recovers(tmp_path):
    """--recheck-inactive asks Yahoo again; a symbol that answers is ok again."""
    server = CraftedServer({"OLD": listing()})
    db = tmp_path / "s.duckdb"
    with serving_crafted(server) as srv:
        del server.listings["OLD"]
        for _ in range(3):
            with contextlib.suppress(IngestIncomplete):
                run(db, srv.base_url, ["OLD"])
        assert status(db, "OLD")["status"] == "inactive"
        server.listings["OLD"] = listing()
        assert run(db, srv.base_url, ["OLD"]).results["OLD"].status == "inactive"
        result = run(db, srv.base_url, ["OLD"], recheck_inactive=True)
    assert result.results["OLD"].status == "ok"
    assert (status(db, "OLD")["status"], status(db, "OLD")["not_found_runs"]) == ("ok", 0)
