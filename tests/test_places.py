"""Resources outside the store (issue 27, fault 6): Numba's kernel cache and Ray's files
fall back to a place that can take them, or fail in one line naming it.

With HOME on a full disk, `stockml backtest` died in Numba's ENOSPC traceback (now in a
one-line "no room left ... use another --db" that sends the user to the wrong disk) while
the store's disk had room; with HOME not a folder, `stockml train` died on `~/.ray`; a
RAY_TMPDIR that cannot be written ended in a traceback. (The server's log on a read-only
mount is tests/test_web_security.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from features.cache import configure_numba_cache, kernel_digest
from stockml import store
from tests.conftest import insert_prices
from tests.fs_support import fill, tmpfs

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(args: list[str], env: dict, drop=("NUMBA_CACHE_DIR",)) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in {**os.environ, **env}.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args, "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**environment, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def prices_store(sp500_bars, tmp_path_factory) -> Path:
    """Twelve real stocks' prices, 2017-2021: no features yet."""
    symbols = sorted(sp500_bars["symbol"].unique().to_list())[:12]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    db = tmp_path_factory.mktemp("places") / "prices.duckdb"
    con = store.connect(db)
    insert_prices(con, bars)
    store.close(con)
    return db


@pytest.fixture(scope="module")
def labelled_store(prices_store, tmp_path_factory) -> Path:
    """The same with features and labels (`stockml backtest`), ready to train."""
    db = tmp_path_factory.mktemp("labelled") / "s.duckdb"
    shutil.copy(prices_store, db)
    done = run(["backtest", "--db", str(db)], {}, drop=())
    assert done.returncode == 0, done.stderr
    return db


def warm_fallback(tmp: Path) -> Path:
    """TMPDIR's fallback folder holding the kernels this checkout compiled (so the test
    loads them instead of compiling for a minute)."""
    source = configure_numba_cache()
    target = tmp / f"stockml-{os.getuid()}" / "numba" / kernel_digest()
    shutil.copytree(source, target)
    return target


def test_a_full_home_sends_numbas_cache_to_tmpdir(prices_store, tmp_path):
    """HOME on a full tmpfs: the backtest completes (exit 0) with its kernels in this
    user's folder in TMPDIR, said in one note on stderr."""
    db = tmp_path / "s.duckdb"
    shutil.copy(prices_store, db)
    with tmpfs(tmp_path / "home", "4m") as home:
        fill(home)
        tmp = tmp_path / "tmp"
        fallback = warm_fallback(tmp)
        done = run(["backtest", "--db", str(db)], {"HOME": str(home), "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == (
        f"stockml: note: Numba's kernel cache goes to {fallback} "
        f"({home}/.cache/stockml/numba/{kernel_digest()}: No space left on device)"
    )
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM prices)")
    features, prices = rows.fetchone()
    con.close()
    assert features == prices > 0


def test_train_with_home_not_a_folder(labelled_store, tmp_path):
    """HOME naming a file: `stockml train` runs its local Ray cluster anyway (its token
    handed over in the environment, not written to ~/.ray) and records the run (the run
    signing key, which has no fallback on purpose, is named by STOCKML_SIGNING_KEY)."""
    db = tmp_path / "s.duckdb"
    shutil.copy(labelled_store, db)
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder\n")
    done = run(
        ["train", "--db", str(db), "--models", "logistic", "--windows", "1"],
        {
            "HOME": str(home),
            "MPLCONFIGDIR": str(tmp_path / "mpl"),
            "STOCKML_SIGNING_KEY": str(tmp_path / "signing.key"),
        },
        drop=("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM training_runs").fetchone()[0] == 1
    con.close()


def test_a_ray_temp_dir_that_cannot_be_written_is_one_line(labelled_store, tmp_path):
    """RAY_TMPDIR naming a file: one line naming Ray's temp dir and what to do, exit 2."""
    db = tmp_path / "s.duckdb"
    shutil.copy(labelled_store, db)
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    done = run(
        ["train", "--db", str(db), "--models", "logistic", "--windows", "1"],
        {"RAY_TMPDIR": str(blocked)},
        drop=(),
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0] == (
        f"stockml: error: Ray's temp dir {blocked}/ray cannot be written (Not a directory): "
        "free space there or point RAY_TMPDIR at a folder with room"
    )
