"""Every handler of the web app, in process: Starlette's TestClient over a store written
through the store module's own functions (tests/web_support.py: prices, real features,
listings, two runs with metrics, trades, signals and stored explanations, a run folder
with a plot), no training.

The real server process and Chromium are tests/test_web.py; what an attacker can do to the
page (hosts, headers, stored markup, damaged stores) is tests/test_web_security.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from stockml import store
from tests.web_support import FRIDAY, RUN, RUN_NEW, SUNDAY, build_app_store, png_bytes


@pytest.fixture(scope="module")
def app_store(tmp_path_factory) -> Path:
    return build_app_store(tmp_path_factory.mktemp("web-app"))


@pytest.fixture(scope="module")
def client(app_store, tmp_path_factory):
    """The app on the store, on Tuesday 2 January 2024 (its signals are current)."""
    from stockml.web.app import create_app

    app = create_app(
        app_store, workdir=tmp_path_factory.mktemp("snapshots"), today=lambda: date(2024, 1, 2)
    )
    with TestClient(app, base_url="http://127.0.0.1:5000") as client:
        yield client


def rows_shown(html: str) -> list[str]:
    return re.findall(r'<tr class="signal-row[^"]*" data-symbol="([^"]*)"', html)


def test_signals_page_lists_the_newest_runs_signals_sorted_and_filtered(client):
    """/ml-signals shows the newest run of each profile, sorted by probability by default;
    ?signal= keeps that signal only; a header link sorts by its column."""
    page = client.get("/ml-signals")
    assert page.status_code == 200
    assert "AAA" in rows_shown(page.text) and "CCC" in rows_shown(page.text)
    calls = client.get("/ml-signals", params={"signal": "BUY CALL"}).text
    assert rows_shown(calls) == ["AAA"]
    assert 'href="?sort=p_win&amp;dir=desc"' in page.text
    assert client.get("/").text.count('class="signal-row') == len(rows_shown(page.text))


def test_api_signals_gives_the_pages_rows_as_json(client):
    """/api/signals carries the stored probabilities, names and freshness, sorted as
    asked; ?sector= keeps that sector."""
    data = client.get("/api/signals", params={"sort": "p_win", "dir": "asc"}).json()
    p_win = [r["p_win"] for r in data["signals"]]
    assert p_win == sorted(p_win)
    aaa = next(r for r in data["signals"] if r["symbol"] == "AAA" and r["profile"] == "swing")
    assert aaa["p_win"] == pytest.approx(0.61) and aaa["name"] == "Aaa Corp"
    assert data["freshness"]["last_bar"] == SUNDAY.isoformat()
    energy = client.get("/api/signals", params={"sector": "Energy"}).json()["signals"]
    assert {r["symbol"] for r in energy} == {"AAA", "CCC"}


@pytest.mark.parametrize(
    "query",
    [{"sort": "p_win;DROP TABLE signals"}, {"dir": "sideways"}, {"signal": "SELL"}],
)
def test_bad_sort_direction_or_signal_is_a_400(client, query):
    """A sort outside the table's columns, another direction or an unknown signal is a
    400 page (JSON under /api), never SQL."""
    assert client.get("/ml-signals", params=query).status_code == 400
    assert "error" in client.get("/api/signals", params=query).json()


def test_symbol_page_reads_the_stored_explanation(client):
    """The symbol page shows the contributions `stockml signals` stored, with the stack's
    models and a missing value as '–'; a signal without one says to score again; an
    unknown symbol is a 404 page."""
    page = client.get("/symbol/AAA").text
    assert page.count('class="why"') == 2
    assert "the stack of lightgbm, logistic)" in page
    assert '<td>rsi_14</td><td class="num">71.5</td>' in page
    assert '<td>natr_14</td><td class="num">–</td>' in page
    assert 'data-target="why-chart-1"' in page  # the swing run's, after the options run's
    assert "score again with `stockml signals`" in page  # the options run's HOLD has none
    bbb = client.get("/symbol/BBB").text
    assert "score again with `stockml signals`" in bbb and 'class="why"' not in bbb
    assert client.get("/symbol/NOPE").status_code == 404


def test_symbol_page_draws_bars_trades_and_feature_percentiles(client, app_store):
    """The price figure carries every stored bar, the past-trades table the symbol's
    walk-forward trades, the features table a percentile per stored feature."""
    page = client.get("/symbol/AAA").text
    figure = re.search(r'data-target="price-chart">(.*?)</script>', page, re.S).group(1)
    assert json.loads(figure)["data"][0]["type"] == "candlestick"
    assert len(json.loads(figure)["data"][0]["x"]) == 260
    past = re.search(r'<table id="past-trades">(.*?)</table>', page, re.S).group(1)
    assert past.count("<tr><td>swing</td><td>") == 2
    assert len(re.findall(r'<tr><td>[a-z0-9_]+</td><td>[a-z_]+</td><td class="num">', page)) == 179


def test_runs_page_and_run_page_show_the_stored_run(client):
    """/runs lists both runs; /runs/{id} shows the metrics, the weights table, the
    intervals and the plot found in its run folder."""
    assert f'href="/runs/{RUN}"' in client.get("/runs").text
    page = client.get(f"/runs/{RUN}").text
    assert "0.520" in page and page.count('class="plotly-figure"') == 5
    weights = re.search(r'<table id="weights">(.*?)</table>', page, re.S).group(1)
    assert ">0.25<" in weights and ">0.75<" in weights
    assert f'<img src="/runs/{RUN}/files/models.png"' in page
    assert "<td>stack</td><td>accuracy</td>" in page  # its interval
    assert client.get("/runs/nope").status_code == 404


def test_run_plots_come_only_from_the_runs_folder(client):
    """A run's plot is served from `<runs>/<run id>/`; the folder the store names in
    training_runs.run_dir is never read, nor any path."""
    png = client.get(f"/runs/{RUN}/files/models.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == png_bytes()
    for name in ("secret.png", "..%2Fmodels.png", "report.md"):
        assert client.get(f"/runs/{RUN}/files/{name}").status_code == 404
    assert client.get("/runs/nope/files/models.png").status_code == 404


def test_api_run_decodes_the_profile_once_whichever_way_it_was_stored(client):
    """/api/runs/{id} gives params with the profile as an object, whether the run stored
    it as JSON text inside its JSON (as training does today) or as an object."""
    old = client.get(f"/api/runs/{RUN}").json()
    new = client.get(f"/api/runs/{RUN_NEW}").json()
    assert old["run"]["params"]["profile"]["hold_days"] == 14
    assert new["run"]["params"]["profile"]["hold_days"] == 5
    assert old["metrics"]["pooled"]["stack"]["accuracy"] == pytest.approx(0.52)
    assert len(old["trades"]) == 3 and set(old["metrics"]) == {"1", "2", "pooled"}
    assert "error" in client.get("/api/runs/nope").json()


def test_ingest_page_lists_failures_first(client):
    """/ingest lists every symbol's status, the failed ones first with their reason."""
    page = client.get("/ingest").text
    assert page.index("ZZZ") < page.index("AAA") and "HTTP 404 Not Found" in page


def test_static_files_and_plotly_are_served(client):
    """app.js and style.css from the package, plotly.min.js from the plotly package."""
    assert "Plotly.newPlot" in client.get("/static/app.js").text
    assert client.get("/static/style.css").status_code == 200
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000


def test_each_symbol_shows_its_own_newest_signal_and_stale_ones_say_so(client):
    """A crypto symbol's Sunday signal hides no stock's Friday one: every symbol of the
    newest run shows its newest signal with its own day; a symbol with no bar for weeks,
    or with bars newer than its signal, is marked stale with the reason."""
    page = client.get("/ml-signals").text
    assert sorted(rows_shown(page)) == sorted(["AAA", "BBB", "CCC", "BTC-USD", "AAA"])
    data = client.get("/api/signals", params={"profile": "swing"}).json()["signals"]
    days = {r["symbol"]: (r["date"], r["stale"]) for r in data}
    assert days["AAA"] == (FRIDAY.isoformat(), None)
    assert days["BTC-USD"] == (SUNDAY.isoformat(), None)
    assert days["CCC"] == (FRIDAY.isoformat(), None)
    calls = client.get("/api/signals", params={"signal": "BUY CALL"}).json()["signals"]
    assert [r["symbol"] for r in calls] == ["AAA"]
    assert 'class="day stale"' not in page
    later = client.app.state.web
    client.app.state.web = replace(later, today=lambda: date(2024, 1, 10))
    try:
        rows = client.get("/api/signals", params={"profile": "swing"}).json()["signals"]
        assert all(r["stale"].startswith("no bar since") for r in rows)
        assert 'class="day stale"' in client.get("/ml-signals").text
    finally:
        client.app.state.web = later


def test_a_signal_older_than_the_symbols_bars_is_stale(app_store, tmp_path):
    """A symbol whose stored bars go past its newest signal is marked stale: score again."""
    from stockml.web.app import create_app

    db = tmp_path / "s.duckdb"
    db.write_bytes(app_store.read_bytes())
    con = store.connect(db)
    con.execute("UPDATE signals SET date = DATE '2023-12-28' WHERE symbol = 'CCC'")
    con.close()
    app = create_app(db, workdir=tmp_path / "w", today=lambda: date(2024, 1, 2))
    (tmp_path / "w").mkdir()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        rows = client.get("/api/signals", params={"profile": "swing"}).json()["signals"]
    ccc = next(r for r in rows if r["symbol"] == "CCC")
    assert ccc["date"] == "2023-12-28" and "score again" in ccc["stale"]


def test_an_inactive_symbol_is_said_apart_from_failures(app_store, tmp_path):
    """A symbol ingest marked inactive (repeated 404s) is not a failure of the last ingest:
    the page's warnings count it in its own line."""
    from stockml.web.app import create_app

    db = tmp_path / "s.duckdb"
    db.write_bytes(app_store.read_bytes())
    con = store.connect(db)
    con.execute(
        "INSERT INTO ingest_status (symbol, status, attempts, rows, error, updated_at) "
        "VALUES ('FB', 'inactive', 1, 0, 'HTTP 404 on 3 consecutive runs', now())"
    )
    con.close()
    app = create_app(db, workdir=tmp_path / "w", today=lambda: date(2024, 1, 2))
    (tmp_path / "w").mkdir()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        warnings = client.get("/api/signals").json()["freshness"]["warnings"]
    assert "1 symbol(s) failed at the last ingest (see Ingest)" in warnings  # ZZZ only
    assert any(w.startswith("1 symbol(s) inactive after repeated 404s") for w in warnings)
