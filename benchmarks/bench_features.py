"""Features benchmark on the whole shared data set (1.68 M rows, 353 stocks).

All 179 catalog features (warm, Numba, both cores) versus TA-Lib computing its 170
referenced features on the same arrays in the same process; peak memory.

Start-up, each in a fresh Python process that computes one stock's features: cold (an empty
Numba cache folder: every kernel compiled) and warm (a second process on the same folder:
every kernel loaded). Wall seconds of the whole process and its CPU seconds (its children
included: the cold start compiles in two processes), so the figures mean something on a
busy host too. With --baseline COMMIT the same is measured for that commit's kernels, in a
git worktree under a temporary folder (removed afterwards), alternating with the current
code, and the ratios of the medians are printed.

    .venv/bin/python benchmarks/bench_features.py [--check] [--repeat 3]
        [--startup-repeat 1] [--baseline COMMIT] [--startup-only]
"""

from __future__ import annotations

import argparse
import contextlib
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
    "import polars as pl; "
    "from features.cache import configure_numba_cache; configure_numba_cache(); "
    "from features.compute import adjust_bars, compute_matrix; "
    f"d = pl.read_parquet({str(PARQUET)!r}).filter(pl.col('symbol') == 'AAPL'); "
    "compute_matrix(adjust_bars(d))"
)


def startup(tree: Path, cache_dir: str) -> tuple[float, float]:
    """(wall s, CPU s) of a fresh process computing AAPL's features with the kernels of
    `tree`, Numba's cache in `cache_dir`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", STARTUP], cwd=tree, env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def startup_figures(trees: dict[str, Path], repeat: int) -> dict[str, dict[str, list]]:
    """Cold then warm start-up of each tree, `repeat` times, the trees alternating."""
    figures: dict[str, dict[str, list]] = {name: {"cold": [], "warm": []} for name in trees}
    for _ in range(repeat):
        for name, tree in trees.items():
            with tempfile.TemporaryDirectory() as cache:
                figures[name]["cold"].append(startup(tree, cache))
                figures[name]["warm"].append(startup(tree, cache))
    return figures


def print_startup(figures: dict[str, dict[str, list]]) -> None:
    med = {
        (name, when): tuple(statistics.median(x[i] for x in runs) for i in (0, 1))
        for name, by_when in figures.items()
        for when, runs in by_when.items()
    }
    n = len(next(iter(figures.values()))["cold"])
    print(f"start-up, one stock's features in a fresh process, median of {n}:")
    for (name, when), (wall, cpu) in med.items():
        label = "cold (empty Numba cache)" if when == "cold" else "warm (same cache again)"
        print(f"  {name:8} {label}: {wall:6.1f} s wall  {cpu:6.1f} s CPU")
    if "baseline" in figures:
        for when in ("cold", "warm"):
            new, old = med[("current", when)], med[("baseline", when)]
            print(
                f"  {when} current / baseline: wall {new[0] / old[0]:.2f}, "
                f"CPU {new[1] / old[1]:.2f}"
            )


@contextlib.contextmanager
def worktree(commit: str):
    """A detached git worktree of `commit` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory() as parent:
        path = Path(parent) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(path), commit], cwd=ROOT, check=True
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)


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
    parser.add_argument("--startup-repeat", type=int, default=1, help="cold/warm start-ups")
    parser.add_argument("--baseline", help="also time the start-up of this commit's kernels")
    parser.add_argument("--startup-only", action="store_true", help="skip the throughput runs")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        trees = {"current": ROOT}
        if args.baseline:
            trees["baseline"] = stack.enter_context(worktree(args.baseline))
        print_startup(startup_figures(trees, args.startup_repeat))
    if args.startup_only:
        return

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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
