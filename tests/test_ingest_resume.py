"""Stored values, resuming, re-adjusted history, kill -9 and Ctrl-C, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from ingest.plan import WARMUP_CALENDAR_DAYS
from ingest.server import MarketData
from tests.ingest_support import (
    END,
    FAULTY,
    START,
    STILL,
    fresh_market,
    ingest,
    load_market,
    served_bars,
    serving,
    table,
)

ROOT = Path(__file__).resolve().parent.parent
STOCKML = [sys.executable, "-m", "stockml.cli"]
PRICE_COLS = "symbol, date, open, high, low, close, adjclose, volume"


@pytest.fixture(scope="module")
def market(sp500_parquet) -> MarketData:
    return load_market(sp500_parquet, STILL + FAULTY)


def test_values_stored_equal_values_served(market, tmp_path):
    """Every stored bar is exactly what the server sent, from the warm-up start to --end."""
    db = tmp_path / "s.duckdb"
    with serving(market) as server:
        ingest(db, server.base_url, ["AAPL", "MSFT"])
    first = START - timedelta(days=WARMUP_CALENDAR_DAYS)
    for symbol in ["AAPL", "MSFT"]:
        stored = table(
            db, f"SELECT {PRICE_COLS} FROM prices WHERE symbol = '{symbol}' ORDER BY date"
        )
        expected = served_bars(market, symbol, first, END)
        assert stored.drop("symbol").equals(expected), symbol


def test_complete_symbols_cost_no_request(market, tmp_path):
    """A rerun for a range already stored makes no request at all."""
    db = tmp_path / "s.duckdb"
    with serving(market) as server:
        ingest(db, server.base_url, STILL)
        before = len(server.server.log)
        result = ingest(db, server.base_url, STILL)
        assert len(server.server.log) == before
    assert result.count("up-to-date") == len(STILL)


def test_incremental_rerun_fetches_only_the_new_days(market, tmp_path):
    """Extending --end costs one request per symbol and gives the same table as one long run."""
    db, whole = tmp_path / "inc.duckdb", tmp_path / "whole.duckdb"
    later = date(2021, 4, 20)
    with serving(market) as server:
        ingest(db, server.base_url, STILL, end=END)
        before = len(server.server.log)
        ingest(db, server.base_url, STILL, end=later)
        assert len(server.server.log) - before == len(STILL)
        ingest(whole, server.base_url, STILL, end=later)
    query = f"SELECT {PRICE_COLS} FROM prices ORDER BY symbol, date"
    assert table(db, query).equals(table(whole, query))


@pytest.mark.parametrize("event", ["split", "dividend"])
def test_event_between_runs_rewrites_the_stored_history(market, tmp_path, event):
    """A split or dividend after the last run re-adjusts all history: the rerun replaces it,
    and the stored bars again equal what the server serves now."""
    data = fresh_market(market)
    db = tmp_path / "s.duckdb"
    symbol, day = "AMZN", date(2021, 4, 12)
    with serving(data) as server:
        ingest(db, server.base_url, ["AMZN", "GOOGL"], end=END)
        if event == "split":
            data.inject_split(symbol, day, 4.0)
        else:
            data.inject_dividend(symbol, day, 25.0)
        before = len(server.server.log)
        ingest(db, server.base_url, ["AMZN", "GOOGL"], end=date(2021, 4, 20))
        requests = [r.symbol for r in server.server.log[before:]]
    assert requests.count(symbol) == 2  # the overlap showed the move: whole history again
    assert requests.count("GOOGL") == 1
    first = START - timedelta(days=WARMUP_CALENDAR_DAYS)
    stored = table(db, f"SELECT {PRICE_COLS} FROM prices WHERE symbol = '{symbol}' ORDER BY date")
    assert stored.drop("symbol").equals(served_bars(data, symbol, first, date(2021, 4, 20)))
    kinds = table(
        db, f"SELECT kind FROM corporate_actions WHERE symbol = '{symbol}' AND date = '{day}'"
    )
    assert kinds["kind"].to_list() == [event]


def _cli_ingest(db: Path, base_url: str, symbols: list[str], *extra: str) -> list[str]:
    return [
        *STOCKML,
        "ingest",
        "--symbols",
        ",".join(symbols),
        "--start",
        str(START),
        "--end",
        str(END),
        "--base-url",
        base_url,
        "--db",
        str(db),
        "--quiet",
        *extra,
    ]


def _spawn(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_requests(server, n: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while len(server.server.log) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"server saw only {len(server.server.log)} requests")
        time.sleep(0.02)


def test_kill_9_halfway_then_rerun_equals_an_uninterrupted_run(market, tmp_path):
    """kill -9 in the middle of an ingest loses nothing committed; the rerun completes it and
    the tables equal those of a run that was never interrupted."""
    symbols = STILL + FAULTY
    killed, clean = tmp_path / "killed.duckdb", tmp_path / "clean.duckdb"
    with serving(market, latency=0.15) as server:
        proc = _spawn(
            _cli_ingest(killed, server.base_url, symbols, "--rate", "20", "--concurrency", "2")
        )
        _wait_for_requests(server, len(symbols) // 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partial = table(killed, "SELECT count(*) AS n FROM ingest_status")["n"][0]
        assert 0 < partial < len(symbols)
        rerun = _spawn(_cli_ingest(killed, server.base_url, symbols, "--rate", "50"))
        assert rerun.wait(120) == 0, rerun.stderr.read()
        ingest(clean, server.base_url, symbols)
    query = f"SELECT {PRICE_COLS} FROM prices ORDER BY symbol, date"
    assert table(killed, query).equals(table(clean, query))
    status = "SELECT symbol, status, rows, first_date, last_date FROM ingest_status ORDER BY symbol"
    assert table(killed, status).equals(table(clean, status))
    actions = "SELECT * FROM corporate_actions ORDER BY symbol, date, kind"
    assert table(killed, actions).equals(table(clean, actions))


def test_ctrl_c_stops_within_a_second_and_says_how_to_resume(market, tmp_path):
    """Ctrl-C during hung requests exits promptly (130), keeps finished symbols, explains."""
    db = tmp_path / "s.duckdb"
    plan = ";".join(f"{s}=hang*" for s in FAULTY)
    with serving(market, faults=plan) as server:
        proc = _spawn(
            _cli_ingest(db, server.base_url, STILL + FAULTY, "--rate", "50", "--timeout", "60")
        )
        _wait_for_requests(server, len(STILL) + 2)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
        took = time.monotonic() - sent
        err = proc.stderr.read()
    assert code == 130
    assert took < 1.5, f"took {took:.2f} s to stop"
    assert "run the same command again to resume" in err
    assert "Traceback" not in err
    kept = set(table(db, "SELECT symbol FROM ingest_status WHERE status = 'ok'")["symbol"])
    assert kept == set(STILL)


def test_request_log_has_one_event_per_request(market, tmp_path):
    """The JSON log beside the store records every request with symbol, attempt, status, ms."""
    import json

    db = tmp_path / "s.duckdb"
    with serving(market, faults="AAPL=500") as server:
        proc = _spawn(_cli_ingest(db, server.base_url, ["AAPL", "MSFT"], "--rate", "50"))
        assert proc.wait(60) == 0, proc.stderr.read()
        served = len(server.server.log)
    events = [json.loads(line) for line in db.with_suffix(".log").read_text().splitlines()]
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == served == 3
    assert {(e["symbol"], e["attempt"], e["status"]) for e in requests} == {
        ("AAPL", 0, 500),
        ("AAPL", 1, 200),
        ("MSFT", 0, 200),
    }
    assert all(isinstance(e["ms"], float) for e in requests)
