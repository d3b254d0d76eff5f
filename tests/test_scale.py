"""Market scale (issue 14): chunks sized to a memory limit give exactly the one-chunk result,
and training's sample of the store is deterministic, date-ordered and stratified by date."""

from __future__ import annotations

import math
import os
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from backtest.labels import PROFILES, refresh_labels
from features.compute import FEATURE_ROW_BYTES, refresh_features
from ingest.simulated import history_start, scale_listings, store_simulated
from stockml import store
from stockml.errors import InputError
from stockml.memory import (
    BASELINE_BYTES,
    DUCKDB_MIN_BYTES,
    MIN_CHUNK_ROWS,
    MemoryBudget,
    RssWatch,
    parse_size,
    physical_memory,
)
from tests.test_ingest_cli import assert_one_line_error, run_cli
from training.sampling import read_samples

AS_OF = date(2024, 6, 28)
SYMBOLS = 24  # x 3 years: ~18,000 price rows
YEARS = 3
SMALLEST = BASELINE_BYTES + DUCKDB_MIN_BYTES + 64 * 2**20
SWING = PROFILES["swing"]


def test_sizes_parse_and_bad_ones_are_refused():
    """`6G`, `512MiB`, `1.5g` and plain bytes parse (binary units); nonsense, zero and a
    limit below the baseline are refused with InputError."""
    assert parse_size("6G") == 6 * 2**30
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size("1.5g") == int(1.5 * 2**30)
    assert parse_size("800000000") == 800_000_000
    for bad in ("banana", "0G", "-1G", "6 X"):
        with pytest.raises(InputError):
            parse_size(bad)
    with pytest.raises(InputError, match="too small"):
        MemoryBudget.of("100M")


def test_chunk_rows_follow_the_memory_limit():
    """Rows per chunk are what the limit leaves after the baseline and DuckDB's quarter,
    divided by the bytes per row: doubling a large limit doubles the chunk's budget."""
    rows = {g: MemoryBudget.of(f"{g}G").chunk_rows(FEATURE_ROW_BYTES) for g in (2, 4, 8, 16)}
    for g, n in rows.items():
        limit = g * 2**30
        assert n == (limit - BASELINE_BYTES - limit // 4) // FEATURE_ROW_BYTES
    assert rows[2] < rows[4] < rows[8] < rows[16]
    assert abs((rows[16] - rows[8]) - 2 * (rows[8] - rows[4])) <= 2  # floor division
    assert MemoryBudget.of(SMALLEST).chunk_rows(FEATURE_ROW_BYTES) == MIN_CHUNK_ROWS
    assert MemoryBudget.of(None).limit == physical_memory() // 4


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of SYMBOLS simulated stocks x YEARS of prices (no derived tables)."""
    path = tmp_path_factory.mktemp("scale") / "prices.duckdb"
    con = store.connect(path)
    try:
        start = history_start(AS_OF, YEARS)
        stored = store_simulated(con, scale_listings(SYMBOLS), AS_OF, start, progress=False)
        assert stored == con.execute("SELECT count(*) FROM prices").fetchone()[0] > 17_000
    finally:
        con.close()
    return path


def refreshed(source: Path, target: Path, limit: int | str) -> tuple[dict, dict, str]:
    """Copy `source`, refresh features and swing labels under `limit`; both summaries and
    DuckDB's memory_limit as set while the features were written."""
    target.write_bytes(source.read_bytes())
    con = store.connect(target)
    default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    seen = []
    replace = store.replace_features

    def spy(con, *args, **kwargs):
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return replace(con, *args, **kwargs)

    try:
        store.replace_features = spy
        feats = refresh_features(con, progress=False, memory_limit=limit)
        labels = refresh_labels(con, SWING, progress=False, memory_limit=limit)
        after = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        store.replace_features = replace
        con.close()
    assert after == default  # DuckDB's default is back for the queries after a refresh
    assert len(set(seen)) == 1
    return feats, labels, seen[0]


def table(path: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).pl()


@pytest.fixture(scope="module")
def labelled(simulated: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """The simulated store with features and swing labels, each in one chunk (16 GiB)."""
    path = tmp_path_factory.mktemp("labelled") / "store.duckdb"
    feats, labels, _ = refreshed(simulated, path, "16G")
    return path, feats, labels


@pytest.mark.slow
def test_chunked_refresh_equals_one_chunk(
    simulated: Path, labelled: tuple[Path, dict, dict], tmp_path: Path, monkeypatch
):
    """Features and labels computed and written in several chunks (the smallest memory
    limit) are identical, value for value and NULL for NULL, to one chunk (16 GiB); the
    chunk count follows the limit and DuckDB's buffer pool is capped at its share. (Rows
    cost 4x here and the floor is 1,000 rows, so a small store needs several chunks.)"""
    import backtest.labels
    import features.compute
    import stockml.memory

    monkeypatch.setattr(features.compute, "FEATURE_ROW_BYTES", 4 * FEATURE_ROW_BYTES)
    monkeypatch.setattr(backtest.labels, "LABEL_ROW_BYTES", 4 * backtest.labels.LABEL_ROW_BYTES)
    monkeypatch.setattr(stockml.memory, "MIN_CHUNK_ROWS", 1_000)
    big, f_big, l_big = labelled
    small = tmp_path / "small.duckdb"
    f_small, l_small, setting = refreshed(simulated, small, SMALLEST)
    assert f_small["chunks"] >= 4 and l_small["chunks"] >= 2
    assert f_big["chunks"] == 1 and l_big["chunks"] == 1
    assert f_small["rows"] == f_big["rows"] > 17_000
    assert setting.startswith("256") and "MiB" in setting  # DUCKDB_MIN_BYTES
    for sql in (
        "SELECT * FROM features ORDER BY symbol, date",
        "SELECT * FROM labels ORDER BY profile, symbol, date",
        "SELECT symbol, prices_fingerprint, catalog_version, rows FROM features_status "
        "ORDER BY symbol",
    ):
        a, b = table(small, sql), table(big, sql)
        assert a.height > 0
        assert a.equals(b), sql


@pytest.mark.slow
def test_sample_is_deterministic_date_ordered_and_stratified(labelled: tuple[Path, dict, dict]):
    """A capped read keeps every labelled day, ceil(that day's rows x fraction) rows of it,
    ordered by (date, symbol); the same rows every time; a different subset of symbols from
    day to day; and no cap (or a cap above the total) reads every row."""
    con = store.connect(labelled[0])
    try:
        everything = read_samples(con, SWING.name)
        total = everything.height
        cap = total // 10
        first = read_samples(con, SWING.name, cap)
        again = read_samples(con, SWING.name, cap)
        assert read_samples(con, SWING.name, total + 1).equals(everything)
    finally:
        con.close()
    assert first.equals(again)
    assert first.columns == everything.columns
    days = everything.group_by("date").len().sort("date")
    kept = first.group_by("date").len().sort("date")
    assert kept["date"].to_list() == days["date"].to_list()  # every day, none dropped
    fraction = cap / total
    expected = [math.ceil(n * fraction) for n in days["len"].to_list()]
    assert kept["len"].to_list() == expected
    assert cap <= first.height <= cap + days.height
    keys = first.select("date", "symbol")
    assert keys.equals(keys.sort("date", "symbol"))
    per_day = first.group_by("date").agg(pl.col("symbol").sort().str.join(",")).unique("symbol")
    assert per_day.height > days.height // 2  # the subset changes from day to day
    assert first["symbol"].n_unique() == SYMBOLS  # no symbol left out over the years
    assert first.filter(pl.col("label").is_null()).is_empty()


@pytest.mark.slow
def test_load_samples_with_a_cap(labelled: tuple[Path, dict, dict]):
    """load_samples with max_samples returns the capped rows that carry every feature,
    date-ordered, with x aligned to y, dates and symbols."""
    from training.dataset import load_samples

    con = store.connect(labelled[0])
    try:
        total = read_samples(con, SWING.name).height
        cap = total // 5
        sampled = read_samples(con, SWING.name, cap)
        capped = load_samples(con, SWING.name, max_samples=cap)
    finally:
        con.close()
    complete = sampled.drop_nulls(capped.columns)  # warm-up rows are not samples
    assert 0 < len(capped.y) == complete.height <= sampled.height
    assert capped.x.shape == (len(capped.y), len(capped.columns))
    assert len(capped.dates) == len(capped.symbols) == len(capped.y)
    assert (capped.dates[1:] >= capped.dates[:-1]).all()
    assert capped.symbols.tolist() == complete["symbol"].to_list()


def test_rss_watch_sees_an_allocation():
    """RssWatch's peak covers memory the block touched (200 MB of ones)."""
    import numpy as np

    with RssWatch(interval=0.05) as watch:
        block = np.ones(25_000_000)
        block.sum()
    assert watch.peak >= 200_000_000


def test_pss_counts_a_shared_page_once():
    """Three processes mapping the same 200 MB of shared memory: their summed RSS counts it
    three times, their summed PSS once (tree_memory)."""
    import mmap
    import signal

    from stockml.memory import tree_memory

    size, page = 200 * 2**20, mmap.PAGESIZE
    shared = mmap.mmap(-1, size)  # anonymous and MAP_SHARED: children see the same pages
    shared.write(b"\x01" * size)
    ready_r, ready_w = os.pipe()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # the child reads every page, says so, and waits to be killed
            total = sum(shared[i] for i in range(0, size, page))
            os.write(ready_w, b"1" if total else b"0")
            signal.pause()
            os._exit(0)
        children.append(pid)
    try:
        assert os.read(ready_r, 1) + os.read(ready_r, 1) == b"11"
        rss, pss = tree_memory(os.getpid())
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        shared.close()
    assert rss - pss >= 1.5 * size, (rss, pss)
    assert pss >= size


def test_demo_refuses_a_bad_memory_limit(tmp_path: Path):
    """`stockml demo --scale 10 --memory-limit banana` is one line and exit 2, before any
    simulation or ingest."""
    proc = run_cli(
        "demo", "--scale", "10", "--memory-limit", "banana", "--db", str(tmp_path / "d.duckdb")
    )
    assert_one_line_error(proc, 2, "--memory-limit must be a size like 6G")
    assert not (tmp_path / "d.duckdb").exists()


def test_store_connections_start_bounded(tmp_path: Path):
    """Every store connection caps DuckDB's buffer pool at the default budget's share (not
    DuckDB's own 80 % of RAM, which let one scan of a market-sized table hold 19.5 GiB);
    a refresh's bound is released back to it, not to DuckDB's default."""
    from stockml import store
    from stockml.memory import MemoryBudget

    def limit(con) -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    expected = MemoryBudget.of(None).duckdb_bytes
    con = store.connect(tmp_path / "b.duckdb")
    try:
        start = limit(con)
        MemoryBudget.of("2G").bound_duckdb(con)
        assert limit(con) != start
        MemoryBudget.release_duckdb(con)
        assert limit(con) == start
    finally:
        con.close()
    for read_only in (False, True):
        con = store.connect(tmp_path / "b.duckdb", read_only=read_only)
        try:
            got = limit(con)
        finally:
            con.close()
        value, unit = got.split()  # DuckDB shows one decimal: "1.4 GiB"
        scale = {"MiB": 2**20, "GiB": 2**30}[unit]
        assert abs(float(value) * scale - expected) <= 0.1 * 2**30, got


def test_own_peak_rss_is_not_the_forking_parents():
    """A child started by a parent holding ~600 MB: getrusage's ru_maxrss in the child
    carries the parent's high-water mark over the exec, VmHWM (`own_peak_rss`) does not."""
    import json
    import subprocess
    import sys

    import numpy as np

    if not Path("/proc/self/status").exists():
        pytest.skip("VmHWM is Linux's")
    ballast = np.ones(600 * 2**20 // 8)  # touched: resident
    code = (
        "import json; from stockml.memory import own_peak_rss, peak_rss; "
        "print(json.dumps([own_peak_rss(), peak_rss()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    own, inherited = json.loads(out.stdout)
    assert ballast.sum() > 0
    assert inherited >= 600 * 2**20 > 3 * own
