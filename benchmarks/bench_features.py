"""Features benchmark on the whole shared data set (1.68 M rows, 353 stocks).

All 179 catalog features (warm, Numba, both cores) versus TA-Lib computing its 170
referenced features on the same arrays in the same process; cold (fresh Numba cache) and
cached start-up measured in subprocesses; peak memory.

    .venv/bin/python benchmarks/bench_features.py [--check] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PARQUET = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"

STARTUP = (
    "import time, polars as pl; t = time.perf_counter(); "
    "from features.cache import configure_numba_cache; configure_numba_cache(); "
    "from features.compute import adjust_bars, compute_matrix; "
    f"d = pl.read_parquet({str(PARQUET)!r}).filter(pl.col('symbol') == 'AAPL'); "
    "compute_matrix(adjust_bars(d)); print(time.perf_counter() - t)"
)


def startup_seconds(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", STARTUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def talib_all(adjusted: pl.DataFrame, offsets: np.ndarray, references: list[str]) -> float:
    import talib

    arrays = {k: adjusted[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
    compiled = [compile(r, "<catalog>", "eval") for r in references]
    started = time.perf_counter()
    for k in range(len(offsets) - 1):
        a, b = offsets[k], offsets[k + 1]
        env = {
            "ta": talib,
            "np": np,
            "o": arrays["open"][a:b],
            "h": arrays["high"][a:b],
            "l": arrays["low"][a:b],
            "c": arrays["close"][a:b],
            "v": arrays["volume"][a:b],
        }
        for code in compiled:
            eval(code, env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="compare with TA-Lib first")
    args = parser.parse_args()

    from features.cache import configure_numba_cache

    configure_numba_cache()
    from features.catalog import FEATURES
    from features.compute import adjust_bars, compute_matrix, offsets_of

    bars = pl.read_parquet(PARQUET).sort("symbol", "date")
    adjusted = adjust_bars(bars)
    offsets = offsets_of(adjusted["symbol"])
    rows = adjusted.height
    references = [f.reference for f in FEATURES if f.reference != "formula"]

    compute_matrix(adjusted.head(5000))  # load compiled code
    if args.check:
        import talib

        matrix = compute_matrix(adjusted.head(offsets[1]))
        c = adjusted["close"].to_numpy()[: offsets[1]]
        np.testing.assert_allclose(matrix[16], c / talib.SMA(c, 5) - 1, rtol=1e-9)
        print("check: sma_ratio_5 equals TA-Lib on the first stock")

    ours, fresh, theirs = [], [], []
    buffer = np.empty((len(FEATURES), rows))
    buffer.fill(0.0)  # fault its pages in once, as TA-Lib's small recycled outputs are
    for _ in range(args.repeat):
        started = time.perf_counter()
        compute_matrix(adjusted, out=buffer)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        compute_matrix(adjusted)
        fresh.append(time.perf_counter() - started)
        theirs.append(talib_all(adjusted, offsets, references))
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    fresh_s = statistics.median(fresh)
    print(f"rows {rows:,}, symbols {len(offsets) - 1}, median of {args.repeat} runs")
    print(
        f"stockml, all {len(FEATURES)} features:  {ours_s:6.2f} s  "
        f"{rows / ours_s:12,.0f} rows/s  {rows * len(FEATURES) / ours_s:14,.0f} values/s"
    )
    print(
        f"TA-Lib, its {len(references)} features:   {theirs_s:6.2f} s  "
        f"{rows / theirs_s:12,.0f} rows/s  {rows * len(references) / theirs_s:14,.0f} values/s"
    )
    print(f"ratio stockml / TA-Lib: {ours_s / theirs_s:.2f}  (goal < 1.0, at most 1.5)")
    print(
        f"with a fresh {buffer.nbytes / 2**30:.1f} GiB output each call: {fresh_s:6.2f} s, "
        f"ratio {fresh_s / theirs_s:.2f} (the difference is the OS faulting in new pages)"
    )
    with tempfile.TemporaryDirectory() as cold:
        print(f"start-up, cold (compile into an empty cache): {startup_seconds(cold):6.1f} s")
        print(f"start-up, cached (second process, same cache): {startup_seconds(cold):6.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
