"""Shared fixtures: the real data set in ../shared, and fresh DuckDB files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SP500_PARQUET = SHARED_DATA / "sp500_daily.parquet"
CONSTITUENTS_CSV = SHARED_DATA / "sp500_constituents.csv"


def require_shared_data() -> Path:
    """Skip (or, in CI, fail) when ../shared/data is missing."""
    if SP500_PARQUET.exists():
        return SP500_PARQUET
    message = f"real data set not found at {SP500_PARQUET} (expected ../shared beside the repo)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def pytest_configure(config: pytest.Config) -> None:
    """Numba's kernel cache folder, as the CLI sets it: before any test module imports a
    kernel, so the whole run compiles (or loads) the kernels once, in the usual folder."""
    from features.cache import configure_numba_cache

    configure_numba_cache()


@pytest.fixture(scope="session", autouse=True)
def _log_to_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """structlog events of in-process runs go to a file, as in production, not to stdout."""
    from stockml.logs import configure_logging

    configure_logging(tmp_path_factory.mktemp("logs") / "tests.log")


@pytest.fixture(scope="session")
def sp500_parquet() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def sp500_bars(sp500_parquet: Path):
    """The whole shared data set as a polars DataFrame (symbol, date, o/h/l/c, adjclose, ...)."""
    import polars as pl

    return pl.read_parquet(sp500_parquet)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "stockml.duckdb"


def insert_prices(con, bars) -> None:
    """Put real bars (the shared data set's columns) straight into a store's `prices`."""
    con.register(
        "_p",
        bars.select(
            "symbol", "date", "open", "high", "low", "close", "adjclose", "volume"
        ).to_arrow(),
    )
    con.execute("INSERT INTO prices SELECT * FROM _p")
    con.unregister("_p")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, sp500_bars) -> Path:
    """Twelve real stocks, 2017-2021, prices only: enough for a 5-fold stack in seconds
    (the training and web tests' store; module-scoped, so each module trains its own)."""
    from datetime import date

    return prices_store(
        tmp_path_factory.mktemp("train") / "s.duckdb", sp500_bars, 12, date(2017, 1, 1)
    )


def prices_store(db: Path, sp500_bars, n_symbols: int, start) -> Path:
    """A store holding the real bars from `start` of the first `n_symbols` symbols (by
    name) of the shared data, prices only."""
    import polars as pl

    from stockml import store

    symbols = sp500_bars["symbol"].unique().sort().to_list()[:n_symbols]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= start))
    con = store.connect(db)
    try:
        insert_prices(con, bars)
    finally:
        con.close()
    return db


@pytest.fixture(scope="session")
def quick_demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`stockml demo --universe quick --no-train` run once: 20 simulated stocks ingested,
    features, context and labels computed, no training run (the command-line tests' store;
    copy it before writing to it)."""
    import subprocess
    import sys

    db = tmp_path_factory.mktemp("quick_demo") / "demo.duckdb"
    args = ["demo", "--universe", "quick", "--no-train", "--quiet", "--db", str(db)]
    proc = subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return db
