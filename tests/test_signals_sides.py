"""A side whose rule did not earn its place gives no BUY, and says so (issue 24).

The market is hand-built from real bars: twelve stocks of the shared data with a drift
of +0.6 % a session compounded onto every price (open, high, low, close, adjusted close),
so a call bought at the next open and held to the barrier pays after costs while a put
loses. `stockml train` then `stockml signals`: the call rule is on, the put rule off, no
BUY PUT anywhere (test windows, the newest day), and the put's line says why.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stockml import store
from tests.cli_support import cli_env, run_cli
from tests.conftest import insert_prices

DRIFT = 0.006  # per session: about +8.7 % over the 14-session hold


@pytest.fixture(scope="module")
def rising_market(tmp_path_factory, sp500_bars) -> Path:
    """A store of 12 real stocks 2017..2021 with a steady rise compounded on."""
    symbols = sp500_bars["symbol"].unique().sort().to_list()[:12]
    bars = sp500_bars.filter(
        pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1))
    ).sort("symbol", "date")
    growth = pl.int_range(pl.len()).over("symbol").cast(pl.Float64).mul(np.log1p(DRIFT)).exp()
    bars = bars.with_columns(
        [pl.col(c) * growth for c in ("open", "high", "low", "close", "adjclose")]
    )
    db = tmp_path_factory.mktemp("rising") / "s.duckdb"
    con = store.connect(db)
    try:
        insert_prices(con, bars)
    finally:
        con.close()
    return db


@pytest.fixture(scope="module")
def trained_rising(rising_market) -> Path:
    """The rising market after a real `stockml train` (LightGBM and logistic, 2 windows)."""
    train = run_cli(
        *("train", "--db", str(rising_market), "--models", "logistic,lightgbm"),
        *("--windows", "2"),
        env=cli_env(),
        timeout=1200,
    )
    assert train.returncode == 0, train.stderr
    return rising_market


@pytest.mark.slow
def test_a_side_that_loses_after_costs_is_off_and_says_so(trained_rising):
    rising_market = trained_rising
    con = store.connect(rising_market, read_only=True)
    try:
        (run_id,) = con.execute("SELECT run_id FROM training_runs").fetchone()
        live = dict(
            con.execute(
                "SELECT metric, value FROM model_metrics WHERE run_id = ? AND model = 'stack'"
                " AND \"window\" = 'live'",
                [run_id],
            ).fetchall()
        )
        test_trades = dict(
            con.execute(
                "SELECT signal, count(*) FROM signal_trades WHERE run_id = ? GROUP BY signal",
                [run_id],
            ).fetchall()
        )
        put_note = con.execute(
            "SELECT text FROM run_notes WHERE run_id = ? AND note = 'rule.live.put'", [run_id]
        ).fetchone()[0]
    finally:
        con.close()
    assert live["call_rule_on"] == 1 and live["call_rule_train_return"] > 0
    assert live["put_rule_on"] == 0 and live["put_rule_train_return"] <= 0
    assert test_trades.get("BUY CALL", 0) > 0 and "BUY PUT" not in test_trades
    assert put_note.startswith("no BUY PUT rule earned its place on ")

    signals = run_cli("signals", "--db", str(rising_market), "--format", "csv", env=cli_env())
    assert signals.returncode == 0, signals.stderr
    frame = pl.read_csv(signals.stdout.encode())
    assert frame.height == 12 and "BUY PUT" not in set(frame["signal"])
    said = [line for line in signals.stderr.splitlines() if "no BUY PUT rule" in line]
    assert len(said) == 1, signals.stderr
    assert re.search(r"best mean option return after costs -?\d+\.\d%", said[0]), said[0]
    assert "no BUY CALL rule" not in signals.stderr


@pytest.mark.slow
def test_each_symbol_keeps_its_own_day_stale_ones_say_why_inactive_ones_are_left_out(
    trained_rising, tmp_path
):
    """Issue 25's third fault, the signals side: a symbol whose newest feature row is
    older than its bars (scored before the newest ingest) keeps its own day and is marked
    stale with the reason; one ingest marked inactive (repeated 404s) is not scored and one
    line says so; every other symbol is still scored on its own newest day."""
    import shutil

    db = tmp_path / "s.duckdb"
    shutil.copy(trained_rising, db)
    shutil.copytree(trained_rising.parent / "runs", tmp_path / "runs")
    con = store.connect(db)
    try:
        symbols = [
            r[0] for r in con.execute("SELECT DISTINCT symbol FROM prices ORDER BY 1").fetchall()
        ]
        behind, gone = symbols[0], symbols[1]
        (newest,) = con.execute("SELECT max(date) FROM prices").fetchone()
        con.execute(
            "DELETE FROM features WHERE symbol = ? AND date > ?::DATE - INTERVAL 5 DAY",
            [behind, newest],
        )
        con.execute(
            "INSERT INTO ingest_status (symbol, status, attempts, rows, updated_at, error) "
            "VALUES (?, 'inactive', 1, 0, now(), 'HTTP 404 on 3 consecutive runs')",
            [gone],
        )
    finally:
        store.close(con)
    proc = run_cli("signals", "--db", str(db), "--format", "csv", env=cli_env())
    assert proc.returncode == 0, proc.stderr
    frame = pl.read_csv(proc.stdout.encode(), try_parse_dates=True)
    assert gone not in set(frame["symbol"]) and frame.height == len(symbols) - 1
    row = frame.filter(pl.col("symbol") == behind).row(0, named=True)
    assert row["date"] < newest
    assert row["stale"] == f"bars up to {newest} are stored: score again with `stockml signals`"
    others = frame.filter(pl.col("symbol") != behind)
    assert (others["date"] == newest).all()  # the real data ends in 2021: old, and said so
    assert others["stale"].str.starts_with(f"no bar since {newest}").all()
    assert f"{frame.height} of {frame.height} signals are stale" in proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.startswith("not scored:")]
    assert said == [
        f"not scored: {gone} (last bar {newest}): inactive after repeated 404s from Yahoo "
        "(`stockml ingest --recheck-inactive` asks again)"
    ], proc.stderr
