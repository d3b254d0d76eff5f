"""Every fault kind of the fixture server, on both transports, with the same results."""

from __future__ import annotations

import time

import pytest

from ingest.server import MarketData
from stockml.errors import IngestIncomplete
from tests.ingest_support import END, FAULTY, ingest, load_market, serving, table

PLAN = ";".join(
    [
        "AAPL=429*2",
        "MSFT=hang",
        "JPM=drip",
        "XOM=500",
        "KO=chart_null",
        "PFE=reset",
        "NVDA=truncated",
        "AMD=html",
        "CAT=nulls*",
        "BA=dup_last*",
        "MRK=unknown*",
        "T=empty*",
        "VZ=hang*",
    ]
)
EXPECTED = {  # symbol: (status, attempts)
    "AAPL": ("ok", 3),
    "MSFT": ("ok", 2),
    "JPM": ("ok", 2),
    "XOM": ("ok", 2),
    "KO": ("ok", 2),
    "PFE": ("ok", 2),
    "NVDA": ("ok", 2),
    "AMD": ("ok", 2),
    "CAT": ("ok", 1),
    "BA": ("ok", 1),
    "MRK": ("failed", 1),
    "T": ("ok", 1),
    "VZ": ("failed", 3),
}
TIMEOUT = 1.0
RETRIES = 2


@pytest.fixture(scope="module")
def market(sp500_parquet) -> MarketData:
    return load_market(sp500_parquet, FAULTY)


@pytest.fixture(scope="module", params=["aiohttp", "curl"])
def fault_run(request, market, tmp_path_factory):
    """One ingest of every fault kind through one transport; the store and timing."""
    db = tmp_path_factory.mktemp(request.param) / "s.duckdb"
    with serving(market, faults=PLAN, drip_interval=0.05) as server:
        started = time.monotonic()
        with pytest.raises(IngestIncomplete) as failure:
            ingest(
                db,
                server.base_url,
                FAULTY,
                timeout=TIMEOUT,
                retries=RETRIES,
                rate=50.0,
                transport=request.param,
            )
        elapsed = time.monotonic() - started
        log = list(server.server.log)
    status = table(db, "SELECT * FROM ingest_status ORDER BY symbol")
    return {"db": db, "elapsed": elapsed, "error": str(failure.value), "status": status, "log": log}


def _status(run, symbol):
    rows = run["status"].filter(run["status"]["symbol"] == symbol).to_dicts()
    assert rows, f"{symbol} has no ingest_status row"
    return rows[0]


@pytest.mark.parametrize("symbol", sorted(EXPECTED))
def test_each_fault_ends_as_expected(fault_run, symbol):
    """Transient faults recover on retry, permanent ones end failed with the right attempt count."""
    row = _status(fault_run, symbol)
    assert (row["status"], row["attempts"]) == EXPECTED[symbol], row


def test_failures_carry_reasons(fault_run):
    """A failed symbol's reason says what happened: unknown symbol, or timed out."""
    assert "unknown symbol" in _status(fault_run, "MRK")["error"]
    assert "timed out" in _status(fault_run, "VZ")["error"]
    assert "MRK" in fault_run["error"] and "VZ" in fault_run["error"]


def test_null_rows_are_dropped_and_counted(fault_run, market):
    """A whole-null row and a volume-only row are not prices: both dropped and counted."""
    row = _status(fault_run, "CAT")
    assert row["dropped_null"] == 2
    served = table(fault_run["db"], "SELECT count(*) AS n FROM prices WHERE symbol = 'CAT'")["n"][0]
    assert served == row["rows"]
    s = market.series["CAT"]
    window = ((s.dates >= row["fetched_from"]) & (s.dates <= END)).sum()
    assert row["rows"] == window - 2


def test_unfinished_and_late_bars_are_not_stored(fault_run):
    """The live duplicate of the last day and a bar on/after period2 never become closed days."""
    row = _status(fault_run, "BA")
    assert row["last_date"] == END
    dupes = table(
        fault_run["db"],
        "SELECT count(*) AS n FROM (SELECT date FROM prices WHERE symbol='BA' "
        "GROUP BY date HAVING count(*) > 1)",
    )["n"][0]
    assert dupes == 0


def test_empty_window_is_ok_with_no_rows(fault_run):
    """Yahoo's empty-window shape is a valid answer: ok, zero rows, nothing invented."""
    row = _status(fault_run, "T")
    assert row["rows"] == 0 and row["error"] is None


def test_hang_and_drip_are_cut_at_the_total_timeout(fault_run):
    """A hung or drip-fed request never outlives --timeout: the run ends within its bound."""
    bound = len(FAULTY) / 50.0 + (RETRIES + 1) * TIMEOUT + 10
    assert fault_run["elapsed"] <= bound
    # VZ hangs forever: three attempts of about one timeout each, not more.
    assert fault_run["elapsed"] >= (RETRIES + 1) * TIMEOUT


def test_unknown_symbol_is_not_retried(fault_run):
    """Yahoo's 404 'No data found' costs exactly one request."""
    assert sum(1 for r in fault_run["log"] if r.symbol == "MRK") == 1
