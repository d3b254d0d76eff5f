"""Backtest throughput on the whole shared data set (1.68 M rows, 353 stocks).

(a) the label kernel alone: samples/s (warm, both cores);
(b) end to end: bars in DuckDB -> stored samples (179 features + swing labels), with the
    time of each stage and peak memory;
(c) the same labels from a plain pandas implementation on a subset, in the same run, and
    the speed ratio.

    .venv/bin/python benchmarks/bench_backtest.py [--pandas-symbols 10]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PARQUET = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"


def pandas_labels(frame, hold: int, tp: float, sl: float):
    """What a careful pandas user writes: per symbol, per day, look ahead H rows."""
    import pandas as pd

    out = []
    for _, g in frame.groupby("symbol", sort=True):
        c, h, lo = (
            g["close"].to_numpy(),
            g["high"].to_numpy(),
            g["low"].to_numpy(),
        )
        labels = pd.Series(np.nan, index=g.index)
        for t in range(len(g) - hold):
            entry = c[t]
            label = 0
            for k in range(1, hold + 1):
                if lo[t + k] <= entry * (1 + sl):
                    label = -1
                    break
                if h[t + k] >= entry * (1 + tp):
                    label = 1
                    break
            labels.iloc[t] = label
        out.append(labels)
    return pd.concat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pandas-symbols", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from features.cache import configure_numba_cache

    configure_numba_cache()
    from backtest.labels import PROFILES, refresh_labels
    from backtest.nb import label_triple_barrier_into_nb, label_triple_barrier_nb
    from features.compute import adjust_bars, offsets_of, refresh_features
    from stockml import store

    swing = PROFILES["swing"]
    bars = pl.read_parquet(PARQUET).sort("symbol", "date")
    adjusted = adjust_bars(bars)
    arrays = [
        np.ascontiguousarray(adjusted[k].to_numpy()) for k in ("open", "high", "low", "close")
    ]
    offsets = offsets_of(adjusted["symbol"])
    rows = adjusted.height

    # (a) kernel alone, into preallocated outputs (allocation is measured apart)
    barriers = (swing.hold_days, swing.take_profit, swing.stop_loss)
    outs = [np.empty(rows) for _ in range(5)]
    label_triple_barrier_into_nb(*arrays, offsets[:2], *barriers, *outs)
    label_triple_barrier_nb(*arrays, offsets[:2], *barriers)
    started = time.perf_counter()
    result = label_triple_barrier_nb(*arrays, offsets, *barriers)
    allocating = time.perf_counter() - started
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        label_triple_barrier_into_nb(*arrays, offsets, *barriers, *outs)
        times.append(time.perf_counter() - started)
    kernel = statistics.median(times)
    print(
        f"(a) label kernel, {rows:,} rows: {kernel * 1000:.1f} ms, "
        f"{rows / kernel / 1e6:,.0f} M samples/s (median of {args.repeat}; "
        f"{allocating * 1000:.1f} ms when it also allocates its 5 outputs)"
    )

    # (c) pandas on a subset, same rule
    subset_symbols = adjusted["symbol"].unique().sort().head(args.pandas_symbols)
    subset = adjusted.filter(pl.col("symbol").is_in(subset_symbols.to_list()))
    started = time.perf_counter()
    reference = pandas_labels(
        subset.to_pandas(), swing.hold_days, swing.take_profit, swing.stop_loss
    )
    pandas_s = time.perf_counter() - started
    ours_subset = result[0][: subset.height]
    assert np.array_equal(
        np.nan_to_num(reference.to_numpy(), nan=9), np.nan_to_num(ours_subset, nan=9)
    )
    pandas_rate = subset.height / pandas_s
    print(
        f"(c) pandas, {subset.height:,} rows ({args.pandas_symbols} symbols): {pandas_s:.1f} s, "
        f"{pandas_rate:,.0f} samples/s; kernel / pandas = {rows / kernel / pandas_rate:,.0f}x "
        "(same labels: checked)"
    )

    # (b) end to end, DuckDB bars -> stored samples
    with tempfile.TemporaryDirectory() as tmp:
        con = store.connect(Path(tmp) / "bench.duckdb")
        con.execute(
            "INSERT INTO prices SELECT symbol, date, open, high, low, close, adjclose, volume "
            f"FROM read_parquet('{PARQUET}')"
        )
        started = time.perf_counter()
        feats = refresh_features(con, progress=False)
        mid = time.perf_counter()
        labels = refresh_labels(con, swing, progress=False)
        done = time.perf_counter()
        samples = con.execute(
            "SELECT count(*) FROM samples WHERE profile = ? AND label IS NOT NULL", [swing.name]
        ).fetchone()[0]
        con.close()
    total = done - started
    print(
        f"(b) end to end: {rows:,} bars -> {samples:,} stored samples in {total:.1f} s "
        f"({samples / total:,.0f} samples/s): features {mid - started:.1f} s "
        f"({feats['symbols']} symbols), labels {done - mid:.1f} s ({labels['symbols']} symbols)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"    peak RSS of the process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
