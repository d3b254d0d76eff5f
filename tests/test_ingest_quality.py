"""Prices that contradict themselves: repaired when the evidence is exact, else quarantined,
and never labelled (issue 16, item 5)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from backtest.labels import PROFILES, compute_labels, refresh_labels
from features.catalog import MAX_LOOKBACK
from ingest.quality import check_history, needs_full_history
from ingest.yahoo import ACTION_SCHEMA, BAR_SCHEMA
from stockml import store
from tests.ingest_support import fresh_market, ingest, load_market, served_bars, serving, table

SWING = PROFILES["swing"]
FIRST_DAY = date(2024, 1, 1)


def make_bars(closes, adjclose=None, symbol: str = "TEST.L") -> pl.DataFrame:
    """Weekday bars around the given closes: open 0.2% below the close, 1% wicks."""
    closes = np.asarray(closes, dtype=np.float64)
    adj = closes.copy() if adjclose is None else np.asarray(adjclose, dtype=np.float64)
    days = [FIRST_DAY + timedelta(days=i) for i in range(len(closes) * 2)]
    days = [d for d in days if d.weekday() < 5][: len(closes)]
    opens = closes * 0.998
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(closes),
            "date": days,
            "open": opens,
            "high": np.maximum(opens, closes) * 1.01,
            "low": np.minimum(opens, closes) * 0.99,
            "close": closes,
            "adjclose": adj,
            "volume": np.full(len(closes), 1_000_000, dtype=np.int64),
        },
        schema=BAR_SCHEMA,
    )


def split_on(bars: pl.DataFrame, row: int, ratio: float) -> pl.DataFrame:
    return pl.DataFrame(
        [(bars["symbol"][0], bars["date"][row], "split", ratio)], schema=ACTION_SCHEMA, orient="row"
    )


NO_ACTIONS = pl.DataFrame(schema=ACTION_SCHEMA)


def wiggle(n: int, level: float, seed: int = 1) -> np.ndarray:
    """A quiet series near `level`: daily moves within +-1%, so no barrier is touched."""
    rng = np.random.default_rng(seed)
    return level * np.cumprod(1 + rng.uniform(-0.004, 0.004, n))


def losses(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_labels(bars, SWING).filter(pl.col("label") == -1)


def test_pence_to_pounds_switch_is_repaired_and_labels_no_loss():
    """~1000 pence for 15 days then ~10 pounds: the earlier bars are rescaled to pounds."""
    closes = np.concatenate([wiggle(15, 1000.0), wiggle(15, 10.0, seed=2)])
    bars = make_bars(closes)
    before = losses(bars)
    assert before.height == 14 and before["exit_return"].min() < -0.98  # the bug, as it was

    repaired, findings = check_history(bars, NO_ACTIONS)

    assert [(f.date, f.kind, f.action) for f in findings] == [
        (bars["date"][15], "unit_change", "repaired")
    ]
    assert repaired["close"][:15].to_list() == pytest.approx((closes[:15] / 100).tolist())
    assert repaired["close"][15:].to_list() == closes[15:].tolist()  # the newest unit is kept
    assert repaired["volume"].to_list() == bars["volume"].to_list()
    labels = compute_labels(repaired, SWING)
    assert labels.filter(pl.col("exit_return") < -0.5).is_empty()
    assert labels.filter(pl.col("label") == -1).is_empty()


def test_unadjusted_two_for_one_split_is_repaired_and_labels_no_loss():
    """A 2:1 split whose earlier bars Yahoo left unadjusted: earlier prices halved, volume
    doubled, no false losses."""
    closes = np.concatenate([wiggle(15, 100.0), wiggle(15, 50.0, seed=2)])
    bars = make_bars(closes)
    actions = split_on(bars, 15, 2.0)
    assert losses(bars).height == 14  # the bug, as it was

    repaired, findings = check_history(bars, actions)

    assert [(f.kind, f.action) for f in findings] == [("unadjusted_split", "repaired")]
    assert repaired["close"][:15].to_list() == pytest.approx((closes[:15] / 2).tolist())
    assert repaired["adjclose"][:15].to_list() == pytest.approx((closes[:15] / 2).tolist())
    assert repaired["volume"][:15].to_list() == [2_000_000] * 15
    assert repaired["volume"][15:].to_list() == [1_000_000] * 15
    assert losses(repaired).is_empty()
    assert needs_full_history(bars, actions)


def test_unit_change_needs_no_exact_day_and_composes():
    """Pence, pounds, pence again, each switch with a genuine 3% move: both rescaled."""
    closes = np.concatenate([wiggle(10, 1000.0), wiggle(10, 10.3, 2), wiggle(10, 1000.0, 3)])
    repaired, findings = check_history(make_bars(closes), NO_ACTIONS)
    assert [f.action for f in findings] == ["repaired", "repaired"]
    assert repaired["close"].to_list() == pytest.approx(
        np.concatenate([closes[:10], closes[10:20] * 100, closes[20:]]).tolist()
    )


@pytest.mark.parametrize(
    ("jump", "split", "kind"),
    [
        (0.4, None, None),  # a genuine -60% crash: believed, untouched
        (2.05, None, None),  # a genuine +105% day (the largest in sp500_daily)
        (1.01, 2.0, None),  # a split Yahoo applied: the day shows no jump
        (2.0, 2.0, None),  # a jump by r, not 1/r: no unapplied split, and within the limit
        (0.05, None, "extreme_move"),  # -95% with no split: beyond the x10 limit
        (12.0, None, "extreme_move"),  # +1100%
        (0.6, 2.0, "split_mismatch"),  # nearer the unapplied 0.5 than 1, but not exact
        (0.6, 4.0, None),  # a -40% day on a 4:1 split day: nearer applied (1) than 0.25
    ],
)
def test_moves_that_cannot_be_repaired_exactly_are_left_or_quarantined(jump, split, kind):
    """No repair without an exact match: bars come back unchanged, the rest is quarantined."""
    closes = np.concatenate([wiggle(10, 100.0), wiggle(10, 100.0 * jump, 2)])
    bars = make_bars(closes)
    actions = NO_ACTIONS if split is None else split_on(bars, 10, split)
    checked, findings = check_history(bars, actions)
    assert checked.equals(bars)
    expected = [] if kind is None else [(bars["date"][10], kind, "quarantined")]
    assert [(f.date, f.kind, f.action) for f in findings] == expected
    assert not needs_full_history(bars, actions)


def test_only_the_series_that_shows_the_jump_is_rescaled():
    """adjclose jumps 100x while close is smooth: only adjclose's earlier values change."""
    closes = wiggle(20, 10.0)
    adj = closes.copy()
    adj[:10] *= 100
    bars = make_bars(closes, adj)
    repaired, findings = check_history(bars, NO_ACTIONS)
    assert [f.kind for f in findings] == ["unit_change"]
    assert "adjclose x0.01" in findings[0].detail and "close x0.01," not in findings[0].detail
    assert repaired["close"].to_list() == closes.tolist()
    assert repaired["adjclose"].to_list() == pytest.approx(closes.tolist())


def test_quarantined_move_leaves_its_horizon_and_feature_windows_unlabelled(tmp_path):
    """Through a real DuckDB file: a -95% day's flag keeps labels off the H days before it and
    the MAX_LOOKBACK days from it on; every other row is labelled, none with a -95% exit."""
    n, at = 320, 30
    closes = np.concatenate([wiggle(at, 100.0), wiggle(n - at, 5.0, 2)])
    bars = make_bars(closes, symbol="CRASH")
    other = make_bars(np.concatenate([wiggle(at, 100.0), wiggle(n - at, 5.0, 2)]), symbol="OTHER")
    _, findings = check_history(bars, NO_ACTIONS)
    assert [f.kind for f in findings] == ["extreme_move"]

    con = store.connect(tmp_path / "q.duckdb")
    try:
        for frame in (bars, other):
            con.register("_bars", frame.to_arrow())
            con.execute("INSERT INTO prices SELECT * FROM _bars")
            con.unregister("_bars")
        store.replace_price_flags(
            con, "CRASH", [(f.date, f.kind, f.detail, f.action) for f in findings]
        )
        refresh_labels(con, SWING, progress=False)
        labels = store.query_pl(
            con, "SELECT date, label, exit_return FROM labels WHERE symbol = 'CRASH' ORDER BY date"
        )
        unflagged = store.query_pl(con, "SELECT label FROM labels WHERE symbol = 'OTHER'")
    finally:
        con.close()

    hold = SWING.hold_days
    labelled = labels["label"].is_not_null().to_list()
    first_clear = at + MAX_LOOKBACK
    expected = [True] * (at - hold) + [False] * (first_clear - (at - hold))
    assert labelled == expected + [True] * (n - hold - first_clear) + [False] * hold
    assert labels["exit_return"].drop_nulls().min() > -0.5
    assert unflagged["label"].null_count() == hold  # OTHER has the crash but no flag


def test_flags_are_replaced_from_the_incremental_window_on(tmp_path):
    """An incremental write replaces flags after its first day only; a full write all of them."""
    d = [date(2024, 1, day) for day in (2, 3, 4)]
    con = store.connect(tmp_path / "f.duckdb")
    try:
        store.replace_price_flags(
            con,
            "X",
            [(d[0], "extreme_move", "a", "quarantined"), (d[2], "unit_change", "b", "repaired")],
        )
        store.replace_price_flags(con, "X", [(d[1], "extreme_move", "c", "quarantined")], d[0])
        after_incremental = con.execute("SELECT date FROM price_flags ORDER BY date").fetchall()
        assert store.quarantined_days(con)["date"].to_list() == [d[0], d[1]]
        store.replace_price_flags(con, "X", [])
        after_full = con.execute("SELECT count(*) FROM price_flags").fetchone()[0]
    finally:
        con.close()
    assert [r[0] for r in after_incremental] == [d[0], d[1]]
    assert after_full == 0


def corrupt(market, symbol: str, day: date, factor: float, split: float | None = None) -> None:
    """Bars before `day` served `factor` times too high (volume 1/factor for a split that
    Yahoo reports on `day` but did not apply)."""
    s = market.series[symbol]
    before = s.dates < np.datetime64(day, "D")
    for arr in (s.open, s.high, s.low, s.close, s.adjclose):
        arr[before] *= factor
    if split is not None:
        s.volume[before] = np.round(s.volume[before] / factor).astype(np.int64)
        s.splits[np.datetime64(day, "D")] = split


def test_ingest_repairs_and_quarantines_through_the_fixture_server(sp500_parquet, db_path):
    """A real ingest: pence history and an unapplied 2:1 split are stored as the clean data,
    a 20x drop is stored as served and flagged, and no label rests on it."""
    symbols = ["ADBE", "AMZN", "GOOGL"]
    clean = load_market(sp500_parquet, symbols)
    market = fresh_market(clean)
    day = date(2020, 9, 1)
    corrupt(market, "ADBE", day, 100.0)  # pence before, pounds from `day`
    corrupt(market, "AMZN", day, 2.0, split=2.0)  # split reported, earlier bars unadjusted
    corrupt(market, "GOOGL", day, 20.0)  # -95% with no event

    with serving(market) as server:
        result = ingest(db_path, server.base_url, symbols)
    assert {s: r.flags for s, r in result.results.items()} == {
        "ADBE": "1 repaired",
        "AMZN": "1 repaired",
        "GOOGL": "1 quarantined",
    }
    flags = table(db_path, "SELECT symbol, date, kind, action FROM price_flags ORDER BY symbol")
    assert flags.rows() == [
        ("ADBE", day, "unit_change", "repaired"),
        ("AMZN", day, "unadjusted_split", "repaired"),
        ("GOOGL", day, "extreme_move", "quarantined"),
    ]
    stored = table(db_path, "SELECT * FROM prices ORDER BY symbol, date")
    for symbol in ("ADBE", "AMZN"):
        got = stored.filter(pl.col("symbol") == symbol)
        want = served_bars(clean, symbol, got["date"][0], got["date"][-1])
        for column in ("open", "close", "adjclose"):
            assert got[column].to_list() == pytest.approx(want[column].to_list(), rel=1e-6)
        # An odd volume halved by the corruption is rounded: back within one share.
        assert got["volume"].to_list() == pytest.approx(want["volume"].to_list(), abs=1)

    con = store.connect(db_path)
    try:
        refresh_labels(con, SWING, progress=False)
        worst = con.execute("SELECT min(exit_return) FROM labels").fetchone()[0]
    finally:
        con.close()
    assert worst > -0.5


def test_a_unit_change_in_new_bars_turns_an_incremental_fetch_into_a_full_one(
    sp500_parquet, db_path
):
    """Stored in pence, new bars in pounds: the rerun refetches the whole history, so every
    stored bar, not just the fetched window, ends in pounds."""
    clean = load_market(sp500_parquet, ["ADBE"])
    market = fresh_market(clean)
    corrupt(market, "ADBE", date(2021, 2, 10), 100.0)
    with serving(market) as server:
        first = ingest(db_path, server.base_url, ["ADBE"], end=date(2021, 1, 29))
        second = ingest(db_path, server.base_url, ["ADBE"])
    assert first.results["ADBE"].flags == ""
    assert second.results["ADBE"].refetched and second.results["ADBE"].flags == "1 repaired"
    got = table(db_path, "SELECT date, close FROM prices ORDER BY date")
    want = served_bars(clean, "ADBE", got["date"][0], got["date"][-1])
    assert got["close"].to_list() == pytest.approx(want["close"].to_list(), rel=1e-6)
