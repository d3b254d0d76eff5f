"""No feature is ever +-inf: halts, zero volume, constant and tiny prices give finite
values or NaN (stored NULL), also after the float32 cast of the store. Symbols that can
never give a sample are named, and training refuses an infinite stored feature by name."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.labels import PROFILES, refresh_labels
from features.catalog import COLUMNS
from features.compute import adjust_bars, compute_matrix, refresh_features
from features.coverage import uncovered_symbols
from stockml import store
from stockml.errors import InputError, NothingToDoError
from training.dataset import load_samples

ROOT = Path(__file__).resolve().parent.parent


def bars(
    n: int,
    seed: int,
    scale: float,
    halt: tuple[int, int] | None = None,
    zero_volume: bool = False,
    constant: bool = False,
) -> pl.DataFrame:
    """A random walk at price level `scale`; `halt` = (first day, days) of flat bars with
    volume 0; `constant` = one price for every bar."""
    rng = np.random.default_rng(seed)
    closes = scale * np.exp(np.cumsum(rng.standard_t(4, n) * 0.015))
    if constant:
        closes = np.full(n, scale)
    opens = closes * (1 + rng.normal(0, 0.005, n))
    spread = 1 + np.abs(rng.normal(0, 0.01, (2, n)))
    highs = np.maximum(opens, closes) * spread[0]
    lows = np.minimum(opens, closes) / spread[1]
    volume = rng.integers(1_000, 10_000_000, n).astype(np.float64)
    if constant:
        opens = highs = lows = closes
    if halt is not None:
        start, days = halt
        start = min(start, n - 1)
        level = closes[start - 1] if start > 0 else closes[0]
        for arr in (opens, highs, lows, closes):
            arr[start : start + days] = level
        volume[start : start + days] = 0.0
    if zero_volume:
        volume[:] = 0.0
    return pl.DataFrame(
        {
            "symbol": ["X"] * n,
            "date": [date(2000, 1, 3) + timedelta(days=i) for i in range(n)],
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "adjclose": closes,
            "volume": volume,
        }
    )


def infinite_features(frame: pl.DataFrame) -> dict[str, int]:
    matrix = compute_matrix(adjust_bars(frame))
    stored = matrix.astype(np.float32)
    return {
        name: int(np.isinf(stored[j]).sum())
        for j, name in enumerate(COLUMNS)
        if np.isinf(stored[j]).any() or np.isinf(matrix[j]).any()
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=1, max_value=400),
    seed=st.integers(min_value=0, max_value=10_000),
    exponent=st.floats(min_value=-6, max_value=6),
    halt=st.none() | st.tuples(st.integers(0, 399), st.integers(1, 150)),
    zero_volume=st.booleans(),
    constant=st.booleans(),
)
def test_no_feature_is_ever_infinite(n, seed, exponent, halt, zero_volume, constant):
    """Every feature is finite or NaN for halts, zero volume, constant and tiny or huge
    prices."""
    frame = bars(n, seed, 10.0**exponent, halt, zero_volume, constant)
    assert infinite_features(frame) == {}


def test_the_reported_halt_and_fund_give_nan_not_inf():
    """The issue's cases: a 40-day halt inside a random walk, and volume 0 on every bar;
    the features that were +-inf are NaN where their denominator is zero."""
    halted = bars(400, 1, 50.0, halt=(200, 40))
    matrix = compute_matrix(adjust_bars(halted))
    assert infinite_features(halted) == {}
    late_halt = slice(225, 240)  # every 20-day window lies inside the halt
    for name in ("bb_pctb_10", "cmf_20", "zscore_20", "ad_slope_20", "volume_ratio_20"):
        assert np.isnan(matrix[COLUMNS.index(name), late_halt]).all(), name
    assert np.isfinite(matrix[COLUMNS.index("rsi_14"), late_halt]).all()  # TA-Lib's 0
    fund = bars(400, 2, 50.0, zero_volume=True)
    matrix = compute_matrix(adjust_bars(fund))
    assert infinite_features(fund) == {}
    assert np.isnan(matrix[COLUMNS.index("log_dollar_volume_20")]).all()


def test_a_flat_window_has_zero_skew_and_kurtosis():
    """Returns all 0 (a halt) have no spread: skew and kurtosis are 0, as pandas says,
    not the noise of the rounding left in a sliding mean."""
    matrix = compute_matrix(adjust_bars(bars(400, 5, 50.0, halt=(200, 80))))
    for name in ("skew_20", "kurt_20"):
        assert (matrix[COLUMNS.index(name), 225:280] == 0.0).all(), name


def write_store(db: Path, frames: list[pl.DataFrame], profile: str = "swing") -> None:
    """A store with these bars, their features and the profile's labels."""
    con = store.connect(db)
    try:
        for frame in frames:
            con.register("_f", frame.to_arrow())
            con.execute("INSERT INTO prices SELECT * FROM _f")
            con.unregister("_f")
        refresh_features(con, progress=False)
        refresh_labels(con, PROFILES[profile], progress=False)
    finally:
        con.close()


def named(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(symbol).alias("symbol"))


@pytest.fixture(scope="module")
def fund_store(tmp_path_factory) -> Path:
    """A traded stock and a fund with volume 0 on every bar."""
    db = tmp_path_factory.mktemp("fund") / "f.duckdb"
    write_store(
        db, [named(bars(400, 1, 50.0), "AAA"), named(bars(400, 2, 20.0, zero_volume=True), "FUNDX")]
    )
    return db


def test_symbols_without_a_complete_row_are_named_with_their_null_features(fund_store):
    """The zero-volume fund is the one symbol without a complete row; the reason names
    volume 0 and every feature NULL on all its days."""
    con = store.connect(fund_store)
    try:
        uncovered = uncovered_symbols(con)
        samples = load_samples(con, "swing")
    finally:
        con.close()
    assert [u.symbol for u in uncovered] == ["FUNDX"]
    fund = uncovered[0]
    assert fund.zero_volume and fund.days == 400
    assert {"log_dollar_volume_20", "volume_ratio_20", "cmf_20", "force_13"} <= set(
        fund.always_null
    )
    assert "rsi_14" not in fund.always_null
    assert fund.reason().startswith("FUNDX: no complete feature row: ")
    assert "(volume 0): " in fund.reason() and "log_dollar_volume_20" in fund.reason()
    assert set(samples.symbols) == {"AAA"}


def test_backtest_summary_lists_symbols_without_samples(fund_store):
    """`stockml backtest` says which symbol gave no sample and why, on one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "stockml.cli", "backtest", "--db", str(fund_store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines()]
    assert "symbols that give no training sample: 1" in lines
    line = next(line for line in lines if line.startswith("FUNDX: no complete feature row"))
    assert "(volume 0)" in line and "log_dollar_volume_20" in line


def test_training_on_funds_only_names_them(tmp_path):
    """Nothing to train on because every symbol lacks a feature: the one-line error says
    which symbols and why, not only that there are no samples."""
    db = tmp_path / "funds.duckdb"
    write_store(db, [named(bars(300, 3, 20.0, zero_volume=True), "FUNDX")])
    con = store.connect(db)
    try:
        with pytest.raises(NothingToDoError, match=r"FUNDX: no complete feature row: .*volume 0"):
            load_samples(con, "swing")
    finally:
        con.close()


def test_an_infinite_stored_feature_is_refused_by_name(tmp_path):
    """A +-inf left in the store by an older version: training stops with one line naming
    the symbol, the day and the feature, before any library sees it."""
    db = tmp_path / "inf.duckdb"
    write_store(db, [named(bars(400, 4, 50.0), "AAA")])
    con = store.connect(db)
    try:
        day = con.execute(
            "SELECT max(date) FROM labels WHERE symbol = 'AAA' AND label IS NOT NULL"
        ).fetchone()[0]
        con.execute(
            "UPDATE features SET cmf_20 = '-inf'::FLOAT WHERE symbol = 'AAA' AND date = ?",
            [day],
        )
        with pytest.raises(InputError) as info:
            load_samples(con, "swing")
    finally:
        con.close()
    message = str(info.value)
    assert "cmf_20" in message and "AAA" in message and str(day) in message
    assert "\n" not in message
