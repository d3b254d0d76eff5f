"""The page leads with what to do (issue 24): BUY rows first with their contracts and their
side's record, the run page opening with its verdict, one equity definition, outcomes
coloured from the trader's side, a table usable on a phone, and older stores that still
render.

The store is tests/web_support.py's, plus a run written as `stockml train` and `stockml
signals` write one now (`add_traded_run`: notes, placed-trade figures, equity curves,
contracts from training/contracts.py), through the store module's own writers. Handlers
are tested in process (Starlette's TestClient); the browser tests drive Chromium against
a real `stockml serve` on the same store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from stockml import store
from stockml.store.schema import SIGNAL_CONTRACT_COLUMNS
from stockml.web.trading import NO_RECORD, outcome_for_trader
from tests.test_web import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server
from tests.web_support import (
    CALL_RULE,
    CALL_VERDICT,
    PUT_VERDICT,
    RUN,
    RUN_TRADED,
    add_traded_run,
    build_app_store,
)

TUESDAY = date(2024, 1, 2)  # the store's signals are current on this day
BUYS_FIRST = ["AAA", "BTC-USD", "CCC", "AAA", "BBB"]  # calls by edge, the put, then HOLD


@pytest.fixture(scope="module")
def traded_store(tmp_path_factory) -> Path:
    db = build_app_store(tmp_path_factory.mktemp("web-trading"))
    add_traded_run(db)
    return db


def app_client(db: Path, workdir: Path) -> TestClient:
    from stockml.web.app import create_app

    workdir.mkdir(parents=True, exist_ok=True)
    app = create_app(db, workdir=workdir, today=lambda: TUESDAY)
    return TestClient(app, base_url="http://127.0.0.1:5000")


@pytest.fixture(scope="module")
def client(traded_store, tmp_path_factory):
    with app_client(traded_store, tmp_path_factory.mktemp("snapshots")) as client:
        yield client


def rows_shown(html: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<tr class="signal-row[^"]*" data-symbol="([^"]*)" data-signal="([^"]*)"', html
    )


def row_html(html: str, symbol: str, signal: str) -> str:
    start = html.index(f'data-symbol="{symbol}" data-signal="{signal}"')
    return html[start : html.index("</tr>", start)]


def stored(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --- in process ---------------------------------------------------------------------------


def test_signals_page_leads_with_buy_rows_each_with_its_contract(client, traded_store):
    """/ml-signals lists BUY CALL rows (largest edge first), then BUY PUT, then HOLD, and
    each BUY shows the stored act-on day, strike, expiry, premium, target, stop and last
    exit; a header click still sorts the whole table by that column."""
    page = client.get("/ml-signals").text
    assert [s for s, _ in rows_shown(page)] == BUYS_FIRST
    assert [g for _, g in rows_shown(page)][:3] == ["BUY CALL", "BUY CALL", "BUY PUT"]
    (act_on, strike, expiry, premium, target, stop, last_exit) = stored(
        traded_store,
        "SELECT act_on, strike, expiry, premium, target_price, stop_price, last_exit "
        "FROM signals WHERE run_id = ? AND symbol = 'AAA'",
        [RUN_TRADED],
    )[0]
    aaa = row_html(page, "AAA", "BUY CALL")
    assert f'<td class="act-on">{act_on}</td>' in aaa and f'<td class="expiry">{expiry}</td>' in aaa
    for cls, value in (
        ("strike", strike),
        ("premium", premium),
        ("target", target),
        ("stop", stop),
    ):
        assert f'<td class="num {cls}">{value:.2f}</td>' in aaa
    assert f'<td class="last-exit">{last_exit}</td>' in aaa and act_on > date(2023, 12, 29)
    by_p_win = client.get("/api/signals", params={"sort": "p_win", "dir": "asc"}).json()
    p_win = [r["p_win"] for r in by_p_win["signals"]]
    assert p_win == sorted(p_win)


def test_api_signals_carries_the_contract_and_the_sides_record(client, traded_store):
    """/api/signals gives each BUY its contract and its side's record (placed trades, hit
    rate, mean option return after costs, Sharpe, verdict, live rule) as the store holds
    them; HOLD rows have none; `sides` lists both sides of each run shown, a run recorded
    before verdicts saying so."""
    data = client.get("/api/signals").json()
    rows = data["signals"]
    assert [r["symbol"] for r in rows] == BUYS_FIRST
    aaa = rows[0]
    (strike,) = stored(
        traded_store, "SELECT strike FROM signals WHERE run_id = ? AND symbol = 'AAA'", [RUN_TRADED]
    )[0]
    assert aaa["strike"] == pytest.approx(strike) and aaa["act_on"] == "2024-01-02"
    record = aaa["record"]
    assert record["verdict"] == CALL_VERDICT and record["trade_it"] is True
    assert record["rule"] == CALL_RULE and record["rule_on"] is True
    assert record["trades"] == 3 and record["hit_rate"] == pytest.approx(2 / 3)
    assert record["mean_option_return"] == pytest.approx(0.12) and record["sharpe"] == 1.4
    ccc = rows[2]
    assert ccc["record"]["verdict"] == PUT_VERDICT and ccc["record"]["trade_it"] is False
    assert all(r["record"] is None for r in rows if r["signal"] == "HOLD")
    sides = {(s["run_id"], s["side"]): s for s in data["sides"]}
    assert len(sides) == 4  # the traded swing run and the older options run
    old = [s for s in data["sides"] if s["run_id"] != RUN_TRADED]
    assert {s["missing"] for s in old} == {NO_RECORD}


def test_a_side_whose_verdict_is_do_not_trade_says_so_beside_its_buys(client):
    """Each BUY PUT row of a run whose put verdict is "do not trade it" carries that badge,
    with the verdict as its title; the calls, whose verdict is "trade it", carry none; the
    side cards above the table give each verdict and record."""
    page = client.get("/ml-signals").text
    ccc = row_html(page, "CCC", "BUY PUT")
    assert f'<span class="badge do-not" title="{PUT_VERDICT}">do not trade it</span>' in ccc
    assert "do-not" not in row_html(page, "AAA", "BUY CALL")
    sides = page[page.index('id="sides"') : page.index('id="signals"')]
    assert CALL_VERDICT in sides and PUT_VERDICT in sides
    assert 'class="verdict do-not"' in sides and 'class="verdict trade-it"' in sides
    assert "<b>3</b> trades · hit rate <b>67%</b> · mean option return <b>+12.0%</b>" in sides
    assert page.index('id="sides"') < page.index('id="signals"')


def test_a_side_whose_live_rule_is_off_says_so_in_one_line(traded_store, tmp_path):
    """When the live put rule is off (no BUY PUT rule earned its place, so `stockml signals`
    gave no BUY PUT), the page says the rule's sentence in one line on the put's card."""
    db = tmp_path / "s.duckdb"
    shutil.copy(traded_store, db)
    off = (
        "no BUY PUT rule earned its place on 2023-01-02 .. 2023-10-20: best mean option "
        "return after costs -4.1% (380 trades)"
    )
    con = store.connect(db)
    con.execute(
        "UPDATE model_metrics SET value = 0 WHERE run_id = ? AND \"window\" = 'live' "
        "AND metric = 'put_rule_on'",
        [RUN_TRADED],
    )
    con.execute(
        "UPDATE run_notes SET text = ? WHERE run_id = ? AND note = 'rule.live.put'",
        [off, RUN_TRADED],
    )
    con.execute("DELETE FROM signals WHERE run_id = ? AND signal = 'BUY PUT'", [RUN_TRADED])
    store.close(con)
    with app_client(db, tmp_path / "w") as client:
        page = client.get("/ml-signals").text
        sides = client.get("/api/signals").json()["sides"]
    assert page.count(f'<p class="off rule-off">⛔ {off}</p>') == 1
    assert "BUY PUT" not in {g for _, g in rows_shown(page)}
    put = next(s for s in sides if s["run_id"] == RUN_TRADED and s["side"] == "put")
    assert put["rule_on"] is False and put["rule"] == off


def test_run_page_opens_with_the_verdict_then_placed_trades_and_stored_curves(client, traded_store):
    """/runs/{id} shows each side's verdict and live rule first, then the placed-trades
    table (stack beside the baselines), then the equity chart drawn from `equity_curves`
    (equity and drawdown per stored curve, the stored values), before the older metrics;
    /api/runs/{id} carries the notes and the same curves."""
    page = client.get(f"/runs/{RUN_TRADED}").text
    main = page[page.index("<main>") :]
    assert main.index('id="verdict"') < main.index(CALL_VERDICT) < main.index(PUT_VERDICT)
    assert main.index(PUT_VERDICT) < main.index('id="placed"') < main.index('id="chart-equity"')
    assert main.index('id="chart-equity"') < main.index('id="pooled"')
    assert f"live rule: {escape(CALL_RULE)}" in main
    placed = re.search(r'<table id="placed">(.*?)</table>', page, re.S).group(1)
    assert 'data-side="call" data-model="stack"' in placed and "hold the universe" in placed
    figure = json.loads(
        re.search(r'data-target="chart-equity">(.*?)</script>', page, re.S).group(1)
    )
    curves = stored(
        traded_store,
        "SELECT model, side, list(equity ORDER BY date) FROM equity_curves WHERE run_id = ? "
        "GROUP BY ALL",
        [RUN_TRADED],
    )
    assert len(figure["data"]) == 2 * len(curves) == 14
    stack_call = next(e for m, s, e in curves if (m, s) == ("stack", "call"))
    assert figure["data"][0]["name"] == "call stack"
    assert figure["data"][0]["y"] == pytest.approx(stack_call)
    assert "cumulative" not in json.dumps(figure)  # no sum of overlapping percent returns
    data = client.get(f"/api/runs/{RUN_TRADED}").json()
    assert data["notes"]["verdict.put"] == PUT_VERDICT and len(data["equity_curves"]) == 7
    assert data["trades"][0]["entry_date"] and data["trades"][0]["costs"] == 0.03


@pytest.mark.parametrize(
    ("signal", "outcome", "expected"),
    [
        ("BUY CALL", 1, ("target ↑", "gain")),
        ("BUY CALL", -1, ("stop ↓", "loss")),
        ("BUY PUT", -1, ("stop ↓", "gain")),
        ("BUY PUT", 1, ("target ↑", "loss")),
        ("BUY PUT", 0, ("hold limit", "flat")),
        ("BUY CALL", None, ("open", "open")),
    ],
)
def test_outcome_is_read_from_the_traders_side(signal, outcome, expected):
    """A put whose stock reached the stop (fell) gained; a call's stop lost."""
    assert outcome_for_trader(signal, outcome) == expected


def test_trades_tables_colour_outcomes_from_the_traders_side(client):
    """On the run page and the symbol page, a BUY PUT that reached the stop is a gain
    (green), one that reached the target a loss; a call's target is a gain."""
    page = client.get(f"/runs/{RUN_TRADED}").text
    trades = re.search(r'<table id="trades">(.*?)</table>', page, re.S).group(1)
    cells = re.findall(
        r"<td>(BUY \w+)</td>.*?<td class=\"(\w+)\">([^<]+)</td><td class=\"num", trades
    )
    assert sorted(cells) == sorted(
        [
            ("BUY CALL", "gain", "target ↑"),
            ("BUY PUT", "gain", "stop ↓"),
            ("BUY PUT", "loss", "target ↑"),
        ]
    )
    ccc = client.get("/symbol/CCC").text
    past = re.search(r'<table id="past-trades">(.*?)</table>', ccc, re.S).group(1)
    assert '<td class="gain">stop ↓</td>' in past and '<td class="loss">target ↑</td>' in past


def old_store(traded_store: Path, db: Path) -> Path:
    """`traded_store` as a version before issue 24 left it: no run_notes or equity_curves,
    no contract columns in signals, no placed columns in signal_trades (changed with DuckDB
    alone: the store module would bring it up to date on connect)."""
    shutil.copy(traded_store, db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE run_notes; DROP TABLE equity_curves")
    for column in SIGNAL_CONTRACT_COLUMNS:
        con.execute(f"ALTER TABLE signals DROP COLUMN {column}")
    for column in ("entry_date", "entry_price", "costs"):
        con.execute(f"ALTER TABLE signal_trades DROP COLUMN {column}")
    con.execute("DELETE FROM model_metrics WHERE metric LIKE '%trade_it' OR \"window\" = 'live'")
    con.close()
    return db


def test_a_store_recorded_before_verdicts_renders_and_says_what_is_missing(traded_store, tmp_path):
    """A store without run_notes, equity_curves, contract or placed columns (a run
    recorded before them) still renders every page, with one line saying what to run."""
    db = old_store(traded_store, tmp_path / "old.duckdb")
    with app_client(db, tmp_path / "w") as client:
        pages = {
            p: client.get(p)
            for p in (
                "/ml-signals",
                "/api/signals",
                f"/runs/{RUN_TRADED}",
                f"/runs/{RUN}",
                f"/api/runs/{RUN_TRADED}",
                "/symbol/CCC",
            )
        }
    for path, response in pages.items():
        assert response.status_code == 200, (path, response.text[:300])
        assert "Traceback" not in response.text
    signals = pages["/ml-signals"].text
    assert "3 BUY signal(s) carry no contract" in signals and NO_RECORD in signals
    assert [s for s, _ in rows_shown(signals)] == BUYS_FIRST
    run = pages[f"/runs/{RUN_TRADED}"].text
    assert NO_RECORD in run and "no equity curve stored for this run" in run
    assert pages["/api/signals"].json()["signals"][0]["act_on"] is None


# --- Chromium ------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def server(traded_store, tmp_path_factory):
    proc, base = start_server(traded_store, tmp_path_factory.mktemp("serve") / "serve.log")
    yield base
    stop_server(proc)


def open_tab(browser, server, width: int, height: int):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    return context, tab


@pytest.mark.slow
def test_browser_signals_table_leads_with_buy_rows(browser, server):
    """In Chromium the table's rows read BUY CALL, BUY PUT, then HOLD, under the side
    cards, and the do-not-trade badge shows beside the put."""
    context, tab = open_tab(browser, server, 1400, 900)
    tab.goto("/ml-signals")
    signals = tab.locator("#signals tbody tr.signal-row").evaluate_all(
        "rows => rows.map(r => r.dataset.signal)"
    )
    assert signals == ["BUY CALL", "BUY CALL", "BUY PUT", "HOLD", "HOLD"]
    assert tab.locator("#sides").bounding_box()["y"] < tab.locator("#signals").bounding_box()["y"]
    badge = tab.locator("#signals tr.buy-put .badge.do-not")
    assert badge.is_visible() and badge.inner_text() == "do not trade it"
    assert tab.problems == []
    context.close()


@pytest.mark.slow
def test_browser_run_page_opens_with_the_verdict(browser, server):
    """The run page's first block under its title is the verdict of both sides, in view
    without scrolling, and the equity chart from the stored curves is drawn."""
    context, tab = open_tab(browser, server, 1400, 900)
    tab.goto(f"/runs/{RUN_TRADED}")
    first = tab.evaluate("document.querySelector('main h1').nextElementSibling.id")
    assert first == "verdict"
    for text in (CALL_VERDICT, PUT_VERDICT):
        box = tab.get_by_text(text).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900
    tab.wait_for_selector("#chart-equity .main-svg")
    assert tab.problems == []
    context.close()


@pytest.mark.slow
def test_browser_phone_keeps_the_signal_in_view(browser, server):
    """On a 390 px wide phone the page itself never scrolls sideways; the table scrolls
    inside its box, and the symbol and signal cells stay in view, uncovered, at the left
    whether it is scrolled or not."""
    context, tab = open_tab(browser, server, 390, 844)
    tab.goto("/ml-signals")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390
    scroller = tab.locator("#signals-scroll")
    assert tab.evaluate("(el) => el.scrollWidth > el.clientWidth", scroller.element_handle())
    tab.evaluate("window.scrollTo(0, document.getElementById('signals-scroll').offsetTop)")
    cell = tab.locator("#signals tbody tr.signal-row td.signal").first
    symbol = tab.locator("#signals tbody tr.signal-row td.symbol").first
    before = cell.bounding_box()
    scroller.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    tab.wait_for_function("document.getElementById('signals-scroll').scrollLeft > 0")
    for located in (cell, symbol):
        box = located.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        covered = tab.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('td')?.className",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert covered == located.get_attribute("class")
    assert cell.bounding_box()["x"] == pytest.approx(before["x"], abs=1)
    assert "BUY CALL" in cell.inner_text()
    last = tab.locator("#signals tbody tr.signal-row td.sector").first
    assert last.bounding_box()["x"] < 390  # scrolled: the last column came into view
    tab.screenshot(
        path=str(Path(__file__).resolve().parent.parent / "test-artifacts" / "web" / "phone.png")
    )
    assert tab.problems == []
    context.close()
