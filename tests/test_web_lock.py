"""A page left open never locks the user out of their store: the real `stockml ingest`
succeeds while `stockml serve` answers a loop of requests, and the page then shows what
the ingest wrote. The control test shows the hazard is real: a process merely holding a
read-only DuckDB connection to the store makes the same ingest fail."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.ingest_support import START, load_market, serving
from tests.ingest_support import ingest as ingest_in_process
from tests.test_web import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["ADBE", "AMZN", "MRK"]  # MRK fails: unknown symbol
LATER = ["BKNG", "GOOGL", "ALGN", "ANSS", "AAPL", "MSFT", "JPM", "XOM"]
END = "2021-03-31"

pytestmark = pytest.mark.slow


def ingest_cli(db: Path, base_url: str, symbols: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stockml.cli",
            "ingest",
            "--symbols",
            ",".join(symbols),
            "--start",
            START.isoformat(),
            "--end",
            END,
            "--db",
            str(db),
            "--base-url",
            base_url,
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def market(sp500_parquet):
    return load_market(sp500_parquet, FIRST + LATER)


@pytest.fixture
def first_store(market, tmp_path):
    """A store holding three symbols' ingest, one of them failed."""
    from stockml.errors import IngestIncomplete

    db = tmp_path / "s.duckdb"
    with serving(market, faults="MRK=unknown*") as yahoo, pytest.raises(IngestIncomplete):
        ingest_in_process(db, yahoo.base_url, FIRST)
    return db


class Poller(threading.Thread):
    """GETs the given pages in a loop until stopped; keeps (start, end, path, status)."""

    def __init__(self, base: str, paths: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.paths = base, paths
        self.stop = threading.Event()
        self.seen: list[tuple[float, float, str, int]] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                for path in self.paths:
                    started = time.monotonic()
                    status = client.get(path).status_code
                    self.seen.append((started, time.monotonic(), path, status))


def test_ingest_succeeds_while_the_page_is_requested_in_a_loop(market, first_store, tmp_path):
    """`stockml ingest` of eight more symbols exits 0 while /ml-signals and /ingest are
    requested without pause (every answer a 200); afterwards /ingest lists all eleven
    symbols, the failed one first."""
    server, base = start_server(first_store, tmp_path / "serve.log")
    poller = Poller(base, ["/ml-signals", "/ingest", "/api/signals"])
    try:
        poller.start()
        while len(poller.seen) < 3:
            time.sleep(0.02)
        with serving(market) as yahoo:
            began = time.monotonic()
            proc = ingest_cli(first_store, yahoo.base_url, LATER)
            ended = time.monotonic()
        assert proc.returncode == 0, proc.stderr
        assert "in use" not in proc.stderr
        during = [s for s in poller.seen if s[0] >= began and s[1] <= ended]
        assert len(during) >= 10, "the page was not requested while ingest ran"
        assert {s[3] for s in poller.seen} == {200}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            page = httpx.get(base + "/ingest").text
            if all(f">{s}</a>" in page for s in LATER):
                break
            time.sleep(0.2)
        page = httpx.get(base + "/ingest").text
        listed = [s for s in FIRST + LATER if f">{s}</a>" in page]
        assert sorted(listed) == sorted(FIRST + LATER)
        assert page.index(">MRK</a>") < min(page.index(f">{s}</a>") for s in [*LATER, "ADBE"])
        assert "unknown symbol" in page
    finally:
        poller.stop.set()
        poller.join(timeout=30)
        stop_server(server)


WRITER = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
    "c.execute(\"INSERT OR REPLACE INTO symbols VALUES ('ADBE', 'Renamed Inc', 'Energy')\"); "
    "c.execute('CHECKPOINT'); print('written', flush=True); sys.stdin.readline()"
)


def hold_writer(db: Path) -> subprocess.Popen:
    """A process that opens the store to write, changes it, and keeps it open until its
    stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "written"
    return proc


def test_pages_show_the_last_copy_while_a_writer_holds_the_store(first_store, tmp_path):
    """With a writer holding the changed store, pages still answer from the last copy and
    name the writer's pid; once it closes, the next request shows its change. A server
    started while the writer holds the store answers 503 (retry), never a traceback."""
    from tests.test_web import assert_clean_error

    server, base = start_server(first_store, tmp_path / "serve.log")
    try:
        assert "Renamed Inc" not in httpx.get(base + "/ingest").text
        writer = hold_writer(first_store)
        # The server asks for the lock at most every 0.25 s (Snapshots.check_interval): a
        # request that soon after the writer started may not name it yet, but no page may
        # ever show the writer's unfinished change.
        deadline = time.monotonic() + 10
        while f"written by process {writer.pid}" not in (page := httpx.get(base + "/ingest")).text:
            assert page.status_code == 200 and "Renamed Inc" not in page.text
            assert time.monotonic() < deadline, "the writer was never named"
            time.sleep(0.05)
        assert page.status_code == 200 and "Renamed Inc" not in page.text
        writer.stdin.close()
        writer.wait(timeout=30)
        deadline = time.monotonic() + 10
        while "Renamed Inc" not in (page := httpx.get(base + "/ingest")).text:
            assert time.monotonic() < deadline, "the change never reached the page"
            time.sleep(0.1)
        assert "written by process" not in page.text
    finally:
        stop_server(server)
    writer = hold_writer(first_store)
    try:
        server, base = start_server(first_store, tmp_path / "serve2.log")
        busy = httpx.get(base + "/ml-signals")
        assert_clean_error(busy, 503)
        assert busy.headers["retry-after"] and f"process {writer.pid}" in busy.text
        writer.stdin.close()
        writer.wait(timeout=30)
        assert httpx.get(base + "/ml-signals").status_code == 200
    finally:
        writer.kill()
        stop_server(server)


def test_a_reader_holding_the_store_makes_ingest_fail(market, first_store):
    """Control: what the snapshot avoids. A process holding a read-only connection (what
    a page opening the store itself would do) makes `stockml ingest` fail at once."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); time.sleep(120)",
            str(first_store),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with serving(market) as yahoo:
            proc = ingest_cli(first_store, yahoo.base_url, LATER[:2])
        assert proc.returncode == 2 and "held open by another program" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
