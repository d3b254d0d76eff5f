"""`stockml serve` as a user meets it: a real server process, real HTTP, real Chromium.

One trained 12-stock store (conftest's `small_store`, trained once here with the
two tree boosters) is served by `stockml serve` in a subprocess; the HTTP tests read its
pages and JSON against the store's own rows, the browser tests drive Debian's Chromium
through Playwright and save screenshots under test-artifacts/web/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import numpy as np
import polars as pl
import pytest
from markupsafe import escape

from stockml import store
from tests.conftest import CONSTITUENTS_CSV

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "web"
MODELS = ["lightgbm", "logistic"]  # a booster and a model without trees: both explained
EVIL = "<script>alert(1)</script>"
EVIL_NAME = "<img src=x onerror=alert(2)>"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_store(small_store, tmp_path_factory):
    """The 12-stock store trained once (two windows, in-process, context features, no tuning,
    the default stack), signals scored, names and sectors listed, plus a stored signal for
    a hostile symbol."""
    from training.config import Recipe, TrainConfig
    from training.pipeline import run_training
    from training.signals import latest_signals

    db = tmp_path_factory.mktemp("web") / "s.duckdb"
    shutil.copy(small_store, db)
    # no tuning: faster
    config = TrainConfig.create(models=MODELS, windows=2, recipe=Recipe(tune=False))
    result = run_training(db, config, progress=False, serial=True)
    signals = latest_signals(db, result.run_id).frame
    listings = pl.read_csv(CONSTITUENTS_CSV).filter(
        pl.col("symbol").is_in(signals["symbol"].to_list())
    )
    con = store.connect(db)
    store.upsert_symbols(con, [tuple(r) for r in listings.iter_rows()])
    con.execute(
        "INSERT INTO signals (run_id, symbol, date, signal, p_win, p_timeout, p_loss, threshold, "
        "profile) VALUES (?, ?, ?, 'BUY CALL', 0.9, 0.05, 0.05, 0.5, 'swing')",
        [result.run_id, EVIL, signals["date"][0]],
    )
    con.execute("INSERT INTO symbols VALUES (?, ?, 'Hostile <b>sector</b>')", [EVIL, EVIL_NAME])
    con.close()
    return db, result.run_id


def live_model(db: Path, run_id: str):
    """The run's live model, as `stockml signals` loads it (signature- and hash-checked)."""
    from training.recorder import RunFolder, runs_root

    return RunFolder.open(runs_root(db), run_id).load_model("signal_model")


def model_row(db: Path, symbol: str, day, columns: list[str]) -> np.ndarray:
    """The stored input row of (symbol, day) in `columns` order: features, then context."""
    select = ", ".join(f'"{c}"' for c in columns)
    found = db_rows(
        db,
        f"SELECT {select} FROM features LEFT JOIN context_features USING (symbol, date) "
        "WHERE symbol = ? AND date = ?",
        [symbol, day],
    )
    return np.array(found[0], dtype=np.float64)


def db_rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def start_server(
    db: Path, log: Path, env: dict | None = None, preexec_fn=None
) -> tuple[subprocess.Popen, str]:
    """`stockml serve --port 0` in a subprocess (with `env` as its environment and
    `preexec_fn` run before it starts, when given); its base URL from the line it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", "serve", "--db", str(db), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env or {**os.environ, "NO_COLOR": "1"},
        preexec_fn=preexec_fn,
    )
    line = proc.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)/ml-signals", line)
    if not found:
        proc.kill()
        raise AssertionError(f"serve printed {line!r}; log: {log.read_text()}")
    return proc, found.group(1)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server(web_store, tmp_path_factory):
    db, _ = web_store
    proc, base = start_server(db, tmp_path_factory.mktemp("serve") / "serve.log")
    yield base
    stop_server(proc)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def assert_clean_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    assert "Traceback" not in response.text and 'File "' not in response.text


# --- HTTP -------------------------------------------------------------------------------


def test_signals_page_and_api_show_every_stored_signal(web_store, http):
    """/ml-signals and /api/signals list exactly the newest run's stored signals, with the
    stored probabilities, names and last closes."""
    db, run_id = web_store
    stored = dict(db_rows(db, "SELECT symbol, p_win FROM signals WHERE run_id = ?", [run_id]))
    page = http.get("/ml-signals")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    shown = re.findall(r'<tr class="signal-row[^"]*" data-symbol="([^"]*)"', page.text)
    assert len(shown) == len(stored) == 13
    api = http.get("/api/signals").json()["signals"]
    assert {r["symbol"] for r in api} == set(stored)
    for row in api:
        assert row["p_win"] == pytest.approx(stored[row["symbol"]], abs=1e-12)
    closes = dict(db_rows(db, "SELECT symbol, arg_max(close, date) FROM prices GROUP BY symbol"))
    real = [r for r in api if r["symbol"] != EVIL]
    assert all(r["last_close"] == pytest.approx(closes[r["symbol"]]) for r in real)
    assert all(r["sector"] for r in real) and api[0]["run_id"] == run_id
    assert http.get("/").text.count('class="signal-row') == 13
    order = {"BUY CALL": 0, "BUY PUT": 1, "HOLD": 2}
    ranks = [
        order[s]
        for s in re.findall(
            r'class="signal-row[^"]*" data-symbol="[^"]*" data-signal="([^"]*)"', page.text
        )
    ]
    assert ranks == sorted(ranks)  # what to do first


@pytest.mark.parametrize("signal", ["HOLD", "BUY CALL"])
def test_filters_and_sorting_follow_the_query(web_store, http, signal):
    """?signal= keeps exactly the stored rows of that signal; ?sort=p_win&dir=asc orders by
    p_win ascending; a sort column outside the table is a 400 page, not SQL."""
    db, run_id = web_store
    expected = {
        r[0]
        for r in db_rows(
            db, "SELECT symbol FROM signals WHERE run_id = ? AND signal = ?", [run_id, signal]
        )
    }
    rows = http.get("/api/signals", params={"signal": signal}).json()["signals"]
    assert {r["symbol"] for r in rows} == expected
    p_win = [r["p_win"] for r in http.get("/api/signals?sort=p_win&dir=asc").json()["signals"]]
    assert p_win == sorted(p_win) and len(p_win) == 13
    sector = rows[0]["sector"] if rows else "Energy"
    by_sector = http.get("/api/signals", params={"sector": sector}).json()["signals"]
    assert by_sector and {r["sector"] for r in by_sector} == {sector}
    assert_clean_error(http.get("/ml-signals?sort=p_win;DROP TABLE signals"), 400)
    assert_clean_error(http.get("/ml-signals?signal=SELL"), 400)


@pytest.mark.parametrize(
    "path",
    ["/symbol/NOPE", "/runs/nope", "/api/runs/nope", "/runs/nope/files/x.png", "/no/such/page"],
)
def test_unknown_symbol_or_run_is_a_404_page(http, path):
    """Anything the store does not hold answers 404 with a page (JSON under /api), never
    a traceback."""
    response = http.get(path)
    assert_clean_error(response, 404)
    if path.startswith("/api/"):
        assert "error" in response.json()


def test_store_values_are_html_escaped(http):
    """A symbol, a name and a sector holding markup are shown as text on every page."""
    for path in ("/ml-signals", f"/symbol/{quote(EVIL, safe='')}"):
        page = http.get(path)
        assert page.status_code == 200, page.text[:300]
        assert EVIL not in page.text and EVIL_NAME not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Hostile &lt;b&gt;sector&lt;/b&gt;" in http.get("/ml-signals").text


def test_symbol_page_has_chart_trades_features_and_why(web_store, http):
    """The symbol page carries the price figure (every stored bar), the symbol's
    walk-forward trades, 179 feature percentiles and ten contributions per outcome."""
    db, run_id = web_store
    symbol, trades = db_rows(
        db,
        "SELECT symbol, count(*) FROM signal_trades WHERE run_id = ? GROUP BY symbol "
        "ORDER BY 2 DESC, 1 LIMIT 1",
        [run_id],
    )[0]
    page = http.get(f"/symbol/{symbol}").text
    (n_bars,) = db_rows(db, "SELECT count(*) FROM prices WHERE symbol = ?", [symbol])[0]
    figure = re.search(r'data-target="price-chart">(.*?)</script>', page, re.S).group(1)
    import json

    candles = json.loads(figure)["data"][0]
    assert candles["type"] == "candlestick" and len(candles["x"]) == n_bars
    assert page.count("<tr><td>swing</td><td>") >= trades
    assert len(re.findall(r'<tr><td>[a-z0-9_]+</td><td>[a-z_]+</td><td class="num">', page)) == 179
    reads = live_model(db, run_id).stack.names_
    assert page.count('class="why"') == 2 and f"the stack of {', '.join(reads)})" in page


def test_run_page_and_api_report_the_stored_run(web_store, http):
    """/runs lists the run; /runs/{id} shows pooled and per-window metrics, trades, the
    leakage audit and the report's plots; /api/runs/{id} gives the same numbers."""
    db, run_id = web_store
    assert run_id in http.get("/runs").text
    page = http.get(f"/runs/{run_id}").text
    stored = dict(
        db_rows(
            db,
            "SELECT metric, value FROM model_metrics WHERE run_id = ? AND model = 'stack' "
            "AND \"window\" = 'pooled'",
            [run_id],
        )
    )
    audit = dict(
        db_rows(
            db,
            "SELECT metric, value FROM model_metrics WHERE run_id = ? "
            "AND model = 'audit_random_split'",
            [run_id],
        )
    )
    assert f"{stored['accuracy']:.3f}" in page and f"{audit['accuracy']:.3f}" in page
    assert "Leakage audit" in page and page.count('class="plotly-figure"') == 5
    notes = dict(db_rows(db, "SELECT note, text FROM run_notes WHERE run_id = ?", [run_id]))
    for side in ("call", "put"):  # the verdict first, as the run recorded it
        verdict = str(escape(notes[f"verdict.{side}"]))
        assert page.index('id="verdict"') < page.index(verdict) < page.index('id="placed"')
    (curves,) = db_rows(
        db, "SELECT count(DISTINCT (model, side)) FROM equity_curves WHERE run_id = ?", [run_id]
    )[0]
    figure = re.search(r'data-target="chart-equity">(.*?)</script>', page, re.S).group(1)
    assert curves == 7 and len(json.loads(figure)["data"]) == 2 * curves
    weights = db_rows(
        db,
        'SELECT "window", model, value FROM model_metrics WHERE run_id = ? '
        "AND metric = 'stack_weight' ORDER BY 1, 2",
        [run_id],
    )
    assert {w for w, _, _ in weights} == {"1", "2"}  # the default stack records its weights
    table = re.search(r'<table id="weights">(.*?)</table>', page, re.S).group(1)
    for window in ("1", "2"):
        total = sum(v for w, _, v in weights if w == window)
        assert total == pytest.approx(1.0)
    assert all(f">{v:.2f}<" in table for _, _, v in weights)
    plots = re.findall(r'<img src="(/runs/[^"]+\.png)"', page)
    assert plots and http.get(plots[0]).headers["content-type"] == "image/png"
    data = http.get(f"/api/runs/{run_id}").json()
    assert data["metrics"]["pooled"]["stack"]["accuracy"] == pytest.approx(stored["accuracy"])
    (n_trades,) = db_rows(db, "SELECT count(*) FROM signal_trades WHERE run_id = ?", [run_id])[0]
    assert len(data["trades"]) == n_trades > 0
    assert set(data["metrics"]) == {"1", "2", "pooled", "live"}


def test_server_neither_writes_nor_locks_the_store(web_store, http):
    """After every page, the store file is byte-identical, and a writer opens it while the
    server runs (the server reads its own copy)."""
    db, _ = web_store
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for path in ("/ml-signals", "/runs", "/ingest", "/api/signals"):
        assert http.get(path).status_code == 200
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    store.connect(db).close()  # raises StoreError "in use" if the server held a lock


# --- in process ---------------------------------------------------------------------------


def test_explanation_is_the_live_models_own_probability_change(web_store):
    """Each contribution is the live model's p(x) minus its probability with that one
    feature at its training median, recomputed here row by row; the top ten are the
    largest by magnitude; a row at the medians moves nothing; a model saved without its
    medians (an earlier version) is not explained."""
    from dataclasses import replace

    from stockml.defaults import CLASSES, LOSS, WIN
    from training.explain import explain, input_columns, occlusion

    db, run_id = web_store
    model = live_model(db, run_id)
    columns = input_columns(model)
    assert model.reference.shape == (len(columns),)
    symbol, day = db_rows(
        db,
        "SELECT symbol, date FROM signals WHERE run_id = ? AND symbol <> ? LIMIT 1",
        [run_id, EVIL],
    )[0]
    row = model_row(db, symbol, day, columns)
    result = explain(model, row, columns)
    assert result.models == list(model.stack.names_)
    assert len(result.win) == len(result.loss) == 10
    p = model.predict_proba(row[None, :])[0]
    for cls, prob, items in ((WIN, result.p_win, result.win), (LOSS, result.p_loss, result.loss)):
        k = list(CLASSES).index(cls)
        assert prob == pytest.approx(p[k])
        magnitudes = [abs(c.contribution) for c in items]
        assert magnitudes == sorted(magnitudes, reverse=True) and magnitudes[0] > 0
        for c in items[:3]:
            i = columns.index(c.feature)
            occluded = row.copy()
            occluded[i] = model.reference[i]
            q = model.predict_proba(occluded[None, :])[0]
            assert c.contribution == pytest.approx(p[k] - q[k], abs=1e-9)
            assert c.reference == pytest.approx(model.reference[i], nan_ok=True)
    _, change = occlusion(model, model.reference.copy())
    np.testing.assert_allclose(change, 0.0, atol=1e-12)
    assert explain(replace(model, reference=None), row, columns) is None
    with pytest.raises(ValueError, match="features"):
        occlusion(model, row[:-1])


def test_templates_and_static_files_ship_as_package_data(tmp_path):
    """Every template and static file is in the wheel pyproject's build backend makes (what
    a non-editable install gets) and loads through importlib.resources."""
    import importlib
    import importlib.resources
    import tomllib
    import zipfile

    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    wheel = importlib.import_module(backend["build-backend"]).build_wheel(str(tmp_path))
    in_wheel = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    package = importlib.resources.files("stockml.web")
    shipped = [
        f"{folder}/{item.name}"
        for folder in ("templates", "static")
        for item in (package / folder).iterdir()
        if item.is_file()
    ]
    assert {"templates/signals.html", "templates/symbol.html", "static/app.js"} <= set(shipped)
    for name in shipped:
        assert f"stockml/web/{name}" in in_wheel, f"{name} would not ship"
        assert (package / name).read_text(encoding="utf-8")
    from stockml.web.pages import plotly_js

    assert plotly_js().stat().st_size > 1_000_000  # plotly.js, from the plotly package


# --- Chromium -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh tab that records console errors, page errors and dialogs (alerts)."""
    context = browser.new_context(base_url=server, viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    tab.on("dialog", lambda d: (tab.problems.append(f"dialog {d.message}"), d.dismiss()))
    yield tab
    context.close()


def shot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / name), full_page=True)


def column(tab, css: str) -> list[str]:
    return tab.locator(f"#signals tbody tr.signal-row td.{css}").all_inner_texts()


def test_browser_signals_table_renders_sorts_and_filters(web_store, page):
    """Chromium shows one row per stored signal; clicking the p_win header sorts it (twice:
    the other way), choosing a signal in the filter keeps exactly those rows."""
    db, run_id = web_store
    page.goto("/ml-signals")
    assert page.locator("#signals tbody tr.signal-row").count() == 13
    shot(page, "ml-signals.png")
    page.click("#signals th[data-column=p_win] a")
    page.wait_for_url("**sort=p_win**")
    values = [float(v) for v in column(page, "p-win")]
    assert values == sorted(values, reverse=True)
    page.click("#signals th[data-column=p_win] a")
    page.wait_for_url("**dir=asc**")
    values = [float(v) for v in column(page, "p-win")]
    assert values == sorted(values)
    holds = db_rows(
        db, "SELECT count(*) FROM signals WHERE run_id = ? AND signal = 'HOLD'", [run_id]
    )[0][0]
    page.select_option("#filter-signal", "HOLD")  # submits itself (static/app.js)
    page.wait_for_url("**signal=HOLD**")
    assert set(column(page, "signal")) == {"HOLD"} and len(column(page, "signal")) == holds
    assert page.problems == []


def test_browser_symbol_page_draws_its_charts(web_store, page):
    """The symbol page's price chart and its two "why" charts are drawn as SVG, with
    candles, and no console error."""
    db, run_id = web_store
    symbol = db_rows(
        db,
        "SELECT symbol FROM signal_trades WHERE run_id = ? GROUP BY symbol "
        "ORDER BY count(*) DESC, symbol LIMIT 1",
        [run_id],
    )[0][0]
    page.goto(f"/symbol/{symbol}")
    page.wait_for_selector("#price-chart .main-svg")
    page.wait_for_selector("#why-chart-0 .main-svg")
    assert page.locator("#price-chart .trace.boxes, #price-chart g.trace").count() > 3
    assert page.locator("#price-chart .point path, #price-chart path").count() > 100
    shot(page, "symbol.png")
    assert page.problems == []


def test_browser_hostile_symbol_stays_text(page):
    """A stored symbol `<script>alert(1)</script>` is text in the table and on its page:
    no dialog opens, no script runs."""
    page.goto("/ml-signals")
    cell = page.locator("#signals tbody tr.signal-row td.symbol", has_text="alert(1)")
    assert cell.inner_text() == EVIL
    cell.locator("a").click()
    page.wait_for_selector("#symbol-title")
    assert page.locator("#symbol-title").inner_text().startswith(EVIL)
    assert page.problems == []


def test_browser_run_page_draws_every_chart(web_store, page):
    """The run report draws its five charts and loads its plots, without console errors."""
    _, run_id = web_store
    page.goto(f"/runs/{run_id}")
    page.wait_for_function("document.querySelectorAll('.main-svg').length >= 5")
    shot(page, "run.png")
    assert page.problems == []


@pytest.mark.parametrize(("path", "selector"), [("/runs", "#runs"), ("/ingest", "#ingest")])
def test_browser_list_pages_render(web_store, page, path, selector):
    """The runs list (with the stored run) and the ingest table render without errors."""
    _, run_id = web_store
    page.goto(path)
    table = page.locator(selector)
    assert table.is_visible()
    if path == "/runs":
        assert table.locator(f"a[href='/runs/{run_id}']").count() == 1
    assert page.problems == []


def test_signals_store_each_signals_explanation_as_recomputed(web_store):
    """`latest_signals` stores, beside every signal it scored, the ten largest
    contributions toward win and toward loss that `explain` gives for the stored row now,
    ranked from 1, with the base models the live stack reads."""
    from training.explain import explain, input_columns

    db, run_id = web_store
    model = live_model(db, run_id)
    columns = input_columns(model)
    scored = db_rows(
        db, "SELECT symbol, date FROM signals WHERE run_id = ? AND symbol <> ?", [run_id, EVIL]
    )
    heads = db_rows(
        db, "SELECT symbol, date, models, note FROM signal_explanations WHERE run_id = ?", [run_id]
    )
    assert sorted((s, d) for s, d, _, _ in heads) == sorted(scored)
    assert all(m == list(model.stack.names_) and note is None for _, _, m, note in heads)
    symbol, day = scored[0]
    expected = explain(model, model_row(db, symbol, day, columns), columns)
    for outcome, items in (("win", expected.win), ("loss", expected.loss)):
        stored = db_rows(
            db,
            "SELECT rank, feature, contribution FROM signal_contributions WHERE run_id = ? "
            "AND symbol = ? AND date = ? AND outcome = ? ORDER BY rank",
            [run_id, symbol, day, outcome],
        )
        assert [r for r, _, _ in stored] == list(range(1, 11))
        assert [f for _, f, _ in stored] == [c.feature for c in items]
        np.testing.assert_allclose(
            [v for _, _, v in stored], [c.contribution for c in items], atol=1e-9
        )
