"""What other web pages, a hostile store and a damaged one can do to `stockml serve`.

Each test is one fault found when the product was attacked (issue 27) and fails on the
server before the fix: DNS rebinding (another origin's name pointed at 127.0.0.1 read
/api/signals), a missing `nosniff`, the store's path in every header, plotly drawing a
stored `<a href>` as a live link, a symbol `../runs` linking to /runs, a run page 500 on a
stored window that is not a number, a store value choosing which folder the server
unpickles from, and store copies left in TMPDIR by every request it could not serve.
In process where the browser changes nothing (Starlette's TestClient), in Chromium where
it does (host resolution, URL normalisation, plotly's drawing).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from stockml import store
from tests.test_web import CHROMIUM, CHROMIUM_ARGS, ROOT, start_server, stop_server
from tests.web_support import FRIDAY, RUN, build_app_store, signal_rows

LINK = '<a href="https://evil.example/">win</a>'
DOTS = "../runs"

pytestmark = pytest.mark.slow


class Plant:
    """A pickle that writes `marker` when loaded: what a swapped model file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> Path:
    """The web tests' store, plus what a writer of the store could put there: a model
    named with a link, a window that is not a number, symbols `../runs` and `..`, and a
    run whose `run_dir` names a folder holding a code-running pickle with its manifest."""
    root = tmp_path_factory.mktemp("hostile")
    db = build_app_store(root)
    planted = root / "planted"
    planted.mkdir()
    (planted / "signal_model.pkl").write_bytes(pickle.dumps(Plant(root / "MARKER")))
    digest = hashlib.sha256((planted / "signal_model.pkl").read_bytes()).hexdigest()
    (planted / "signal_model.json").write_text(json.dumps({"signal_model.pkl": digest}))
    con = store.connect(db)
    try:
        con.execute(
            "INSERT INTO model_metrics VALUES (?, 'pooled', ?, 'call_precision', 0.4), "
            "(?, 'holdout', 'stack', 'accuracy', 0.5)",
            [RUN, LINK, RUN],
        )
        con.execute("UPDATE training_runs SET run_dir = ? WHERE run_id = ?", [str(planted), RUN])
        rows = [(DOTS, FRIDAY, "HOLD", 0.3, 0.3), ("..", FRIDAY, "HOLD", 0.3, 0.3)]
        con.execute("DELETE FROM signal_explanations")  # nothing stored: the page may try
        store.replace_signals(
            con,
            RUN,
            signal_rows(RUN, "swing", [("AAA", FRIDAY, "BUY CALL", 0.61, 0.10), *rows]),
        )
    finally:
        con.close()
    return db


@pytest.fixture(scope="module")
def client(hostile_store, tmp_path_factory):
    from stockml.web.app import create_app

    app = create_app(hostile_store, workdir=tmp_path_factory.mktemp("snapshots"))
    with TestClient(app, base_url="http://127.0.0.1:5000") as client:
        yield client


@pytest.fixture(scope="module")
def server(hostile_store, tmp_path_factory):
    proc, base = start_server(hostile_store, tmp_path_factory.mktemp("serve") / "serve.log")
    yield base
    stop_server(proc)


@pytest.fixture(scope="module")
def chromium():
    """Chromium resolving evil.example to 127.0.0.1, as a rebinding attacker's DNS does."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
        yield browser
        browser.close()


# --- who may ask -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:5000", 200),
        ("localhost:5000", 200),
        ("[::1]:5000", 200),
        ("evil.example:5000", 400),
        ("127.0.0.1.evil.example", 400),
        ("", 400),
    ],
)
def test_only_the_served_host_names_are_answered(client, host, status):
    """A request whose Host header is not a name the server is served as gets 400, on the
    pages and the API alike: what keeps a rebinding page out."""
    for path in ("/ml-signals", "/api/signals"):
        assert client.get(path, headers={"host": host}).status_code == status


@pytest.mark.parametrize(
    ("host", "extra", "expected"),
    [
        ("127.0.0.1", [], ["127.0.0.1", "localhost", "[::1]"]),
        ("localhost", ["Stocks.Lan"], ["localhost", "127.0.0.1", "[::1]", "stocks.lan"]),
        ("::1", [], ["[::1]", "127.0.0.1", "localhost"]),
        ("192.168.1.5", ["*.lan"], ["192.168.1.5", "*.lan"]),
    ],
)
def test_served_host_names_follow_host_and_allow_host(host, extra, expected):
    """The names answered: the loopback names for a loopback --host, the address itself
    otherwise, plus each --allow-host (lower case)."""
    from stockml.web.server import served_hosts

    assert served_hosts(host, extra) == expected


def test_a_wildcard_address_answers_this_machines_names():
    """On 0.0.0.0 the page answers the loopback names and this machine's own names."""
    import socket

    from stockml.web.server import served_hosts

    names = served_hosts("0.0.0.0")
    assert {"127.0.0.1", "localhost", socket.gethostname().lower()} <= set(names)


def test_a_rebinding_page_cannot_read_the_signals(chromium, server):
    """Chromium resolves evil.example to 127.0.0.1, as an attacker's DNS does once it
    rebinds: a document of that origin, and a script run in it fetching /api/signals
    same-origin, get 400 and no signal; the page at localhost works. (A document Chromium
    still takes for a public one is already refused loopback by its Private Network Access
    check: the origin's own pages are what the server must refuse.)"""
    port = httpx.URL(server).port
    context = chromium.new_context()
    tab = context.new_page()
    assert tab.goto(f"http://evil.example:{port}/ml-signals").status == 400
    result = tab.evaluate(
        "fetch('/api/signals').then(r => r.text().then(t => ({status: r.status, body: t})))"
    )
    assert result["status"] == 400 and "AAA" not in result["body"], result
    assert tab.goto(f"http://localhost:{port}/ml-signals").status == 200
    assert tab.locator("#signals tbody tr.signal-row").count() >= 3
    context.close()


# --- what every answer says ---------------------------------------------------------------


def test_every_response_says_nosniff(client):
    """Pages, JSON, static files, plotly.js, PNG plots, 404s and host refusals all carry
    `X-Content-Type-Options: nosniff` (and the CSP)."""
    for path in (
        "/ml-signals",
        "/api/signals",
        "/static/app.js",
        "/static/style.css",
        "/static/plotly.min.js",
        f"/runs/{RUN}/files/models.png",
        "/symbol/NOPE",
        "/api/runs/nope",
    ):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
    refused = client.get("/ml-signals", headers={"host": "evil.example"})
    assert refused.status_code == 400 and refused.headers["x-content-type-options"] == "nosniff"


def test_pages_name_the_store_not_its_path(client, hostile_store):
    """The header names the store's file, never the folders above it; error pages name
    neither."""
    folder = str(hostile_store.parent)
    page = client.get("/ml-signals").text
    assert "store s.duckdb" in page and folder not in page
    for path in ("/symbol/NOPE", "/runs/nope", "/no/such/page"):
        error = client.get(path).text
        assert folder not in error and "s.duckdb" not in error


# --- what a writer of the store can put there ----------------------------------------------


def test_the_server_never_unpickles_a_folder_the_store_names(client, hostile_store):
    """A run whose training_runs.run_dir names a folder with a code-running pickle and a
    matching manifest: no page of the run or its symbols runs it (the server reads only
    its runs folder, and nothing there is unpickled)."""
    marker = hostile_store.parent / "MARKER"
    for path in ("/symbol/AAA", f"/runs/{RUN}", f"/api/runs/{RUN}", "/ml-signals"):
        assert client.get(path).status_code == 200
    assert client.get(f"/runs/{RUN}/files/signal_model.pkl").status_code == 404
    assert not marker.exists()


def test_a_window_that_is_not_a_number_renders_after_the_numbered_ones(client):
    """A stored window 'holdout' beside '1' and '2': the run page and its JSON answer 200,
    the numbered windows first."""
    page = client.get(f"/runs/{RUN}")
    assert page.status_code == 200
    windows = page.text[page.text.index('<table id="windows">') :]
    assert windows.index("<tr><td>2</td>") < windows.index("<tr><td>holdout</td>")
    assert client.get(f"/api/runs/{RUN}").json()["metrics"]["holdout"]["stack"]["accuracy"] == 0.5


def test_a_symbol_named_like_a_path_links_to_its_own_page(client):
    """`../runs` is linked as one escaped path segment and `..` through the query, and
    each link opens that symbol's page."""
    page = client.get("/ml-signals").text
    assert 'href="/symbol/..%2Fruns"' in page and 'href="/symbol/?symbol=.."' in page
    assert '<h1 id="symbol-title">../runs' in client.get("/symbol/..%2Fruns").text
    assert '<h1 id="symbol-title">..' in client.get("/symbol/?symbol=..").text


def test_browser_follows_a_path_like_symbol_to_its_page(chromium, server):
    """In Chromium, clicking `../runs` in the signals table opens its symbol page, not
    /runs (a browser resolves `..` in a path before asking)."""
    context = chromium.new_context(base_url=server)
    tab = context.new_page()
    tab.goto("/ml-signals")
    tab.locator("#signals td.symbol a", has_text=DOTS).click()
    tab.wait_for_selector("#symbol-title")
    assert tab.locator("#symbol-title").inner_text().startswith(DOTS)
    context.close()


def test_browser_draws_a_stored_link_in_a_chart_as_text(chromium, server):
    """A model stored as `<a href=...>` is text in the run page's tables and in its plotly
    charts: no SVG link is drawn, the label shows the markup itself."""
    context = chromium.new_context(base_url=server)
    tab = context.new_page()
    tab.goto(f"/runs/{RUN}")
    tab.wait_for_function("document.querySelectorAll('.main-svg').length >= 5")
    assert tab.locator("svg a").count() == 0
    labels = tab.locator("#chart-pooled-call .xtick text").all_text_contents()
    assert LINK in labels, labels
    context.close()


# --- copies of the store -------------------------------------------------------------------


def snapshot_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.name != ".lock"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda db: db.write_bytes(b"not a duckdb store\n" * 4096), id="not-duckdb"),
        pytest.param(lambda db: db.write_bytes(db.read_bytes()[:8192]), id="truncated"),
    ],
)
def test_a_store_that_cannot_be_read_leaves_no_copy_and_says_why(app_store_copy, tmp_path, damage):
    """20 requests on a damaged store: each page is a 503 naming the reason in one line,
    and the server's folder holds no copy of the store afterwards."""
    from stockml.web.app import create_app

    damage(app_store_copy)
    work = tmp_path / "work"
    work.mkdir()
    with TestClient(create_app(app_store_copy, workdir=work), base_url="http://127.0.0.1") as c:
        for _ in range(20):
            page = c.get("/ml-signals")
            assert page.status_code == 503
            message = page.text.split('id="error-message">')[1].split("</p>")[0]
            assert message.startswith("cannot read s.duckdb: ") and "\n" not in message
            assert snapshot_files(work) == []
        assert "error" in c.get("/api/signals").json()


@pytest.fixture
def app_store_copy(hostile_store, tmp_path) -> Path:
    db = tmp_path / "store" / "s.duckdb"
    db.parent.mkdir()
    shutil.copy(hostile_store, db)
    return db


def test_a_full_tmpdir_leaves_no_partial_copy_and_says_why(app_store_copy, tmp_path):
    """The real server cannot write its copy (a file-size limit below the store's size, as
    a full TMPDIR): each page says so in one line, with what to do, and no partial copy is
    left."""
    import resource

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    limit = app_store_copy.stat().st_size // 2

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "TMPDIR": str(tmp), "NO_COLOR": "1"}
    proc, base = start_server(app_store_copy, tmp_path / "serve.log", env, small_files)
    try:
        for _ in range(5):
            page = httpx.get(f"{base}/ml-signals", timeout=60)
            assert page.status_code == 503
            message = page.text.split('id="error-message">')[1].split("</p>")[0]
            assert message.startswith("cannot copy s.duckdb into ") and "\n" not in message
            assert "free space there or start the server with TMPDIR" in message
            assert snapshot_files(tmp) == []
    finally:
        stop_server(proc)


def test_a_killed_servers_copies_are_removed_by_the_next_server(app_store_copy, tmp_path):
    """kill -9 leaves a server's copy in TMPDIR; the next `stockml serve` deletes it at
    start-up, and keeps the folder of a server still running."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "NO_COLOR": "1"}
    log = tmp_path / "serve.log"
    killed, base = start_server(app_store_copy, log, env=env)
    assert httpx.get(f"{base}/ml-signals", timeout=60).status_code == 200
    left = snapshot_files(tmp)
    assert left, "the first server made no copy"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=20)
    running, base = start_server(app_store_copy, log, env=env)
    try:
        assert httpx.get(f"{base}/ml-signals", timeout=60).status_code == 200
        assert not any(p.exists() for p in left)
        assert len([d for d in tmp.iterdir() if d.name.startswith("stockml-serve-")]) == 1
        third, _ = start_server(app_store_copy, log, env=env)
        time.sleep(0.5)
        assert httpx.get(f"{base}/ml-signals", timeout=60).status_code == 200
        stop_server(third)
    finally:
        stop_server(running)
    assert snapshot_files(tmp) == []


def test_damaged_store_copies_are_deleted_by_the_real_server(app_store_copy, tmp_path):
    """The real `stockml serve` on a file that is not a store: 20 requests, a 503 each,
    nothing left in its TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    app_store_copy.write_bytes(os.urandom(1 << 20))
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc, base = start_server(app_store_copy, tmp_path / "serve.log", env=env)
    try:
        for _ in range(20):
            assert httpx.get(f"{base}/ml-signals", timeout=60).status_code == 503
        assert snapshot_files(tmp) == []
    finally:
        stop_server(proc)


# --- the server's own resources ------------------------------------------------------------


def test_serve_reads_a_store_on_a_read_only_mount(app_store_copy, tmp_path):
    """`stockml serve` on a store whose folder cannot be written serves its pages and
    logs elsewhere, saying where."""
    from tests.fs_support import read_only

    with read_only(app_store_copy.parent, tmp_path / "ro") as folder:
        db = folder / "s.duckdb"
        env = {**os.environ, "HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "stockml.cli", "serve", "--db", str(db), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            first, second = proc.stdout.readline(), proc.stdout.readline()
            assert "/ml-signals" in first, (first, proc.stderr.read() if proc.poll() else "")
            log = tmp_path / "home" / ".cache" / "stockml" / "logs" / "s.serve.log"
            assert second.strip() == f"log: {log} (the store's folder cannot be written)"
            base = first.split("page: ")[1].split("/ml-signals")[0]
            assert httpx.get(f"{base}/ml-signals", timeout=60).status_code == 200
            assert log.exists()
        finally:
            stop_server(proc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port 70000: a port is 0 to 65535 (0 picks a free one)"),
        (["--port", "-1"], "--port -1: a port is 0 to 65535 (0 picks a free one)"),
        (["--host", "999.1.1.1"], "cannot listen on 999.1.1.1:"),
    ],
)
def test_serve_refuses_an_address_it_cannot_listen_on_in_one_line(hostile_store, args, message):
    """A port out of range or an address that is not this machine's: one line on
    stderr, exit 2, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "stockml.cli", "serve", "--db", str(hostile_store), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stockml: error: {message}"), done.stderr
