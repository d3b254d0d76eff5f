"""Trades as they could be placed, at training scale: the per-row outcomes (computed once per
window for every row) and the one-position filter (once per candidate threshold), on 400,000
and 1.5 M rows of the shared data, beside the plain-Python references of the tests on a
subset, in the same run; then the option trades (vectorised Black-Scholes) and a portfolio.

    .venv/bin/python benchmarks/bench_trades.py [--repeat 7] [--reference-rows 20000]

--check (on by default) compares the kernels with the references on the subset before
timing; the first call of each kernel is timed apart (Numba loads or compiles it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PARQUET = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--signal-share", type=float, default=0.10)
    args = parser.parse_args()

    from features.cache import configure_numba_cache

    configure_numba_cache()
    from backtest.execution import bars_from_prices, first_free, trade_outcomes
    from backtest.labels import PROFILES
    from backtest.portfolio import Sizing, portfolio_stats, simulate, stock_book
    from tests.test_backtest_execution import slow_first_free, slow_outcomes
    from training.option_trades import option_trades

    swing = PROFILES["swing"]
    barriers = (swing.hold_days, swing.take_profit, swing.stop_loss)
    prices = pl.read_parquet(PARQUET).sort("symbol", "date")
    bars_all = bars_from_prices(prices)
    rng = np.random.default_rng(24)

    started = time.perf_counter()
    trade_outcomes(bars_all, np.arange(1000), *barriers)
    first_free(trade_outcomes(bars_all, np.arange(10), *barriers), np.ones(10), np.zeros(10))
    print(f"first calls (Numba cache load or compile): {time.perf_counter() - started:.2f} s")

    # The references on a subset, for the check and the baseline rate.
    sub = np.sort(rng.choice(len(bars_all.close), size=args.reference_rows, replace=False))
    started = time.perf_counter()
    expected = slow_outcomes(bars_all, sub, *barriers)
    slow_rate = len(sub) / (time.perf_counter() - started)
    ours = trade_outcomes(bars_all, sub, *barriers)
    for j, name in enumerate(("entry_index", "exit_index", "entry_price", "exit_price")):
        want = np.array([e[j] for e in expected], dtype=float)
        np.testing.assert_array_equal(getattr(ours, name).astype(float), want)
    symbol_all = bars_all.symbol_of_row()
    code = (rng.random(len(sub)) < 0.5).astype(np.int8)
    started = time.perf_counter()
    kept_slow = slow_first_free(code, symbol_all[sub], ours.entry_index, ours.exit_index)
    slow_filter_rate = len(sub) / (time.perf_counter() - started)
    assert np.array_equal(first_free(ours, code, symbol_all[sub]), kept_slow)
    print(
        f"check: kernels equal the references on {len(sub):,} random rows; reference rates "
        f"{slow_rate:,.0f} rows/s (outcomes), {slow_filter_rate:,.0f} rows/s (filter)"
    )

    for size in (400_000, 1_500_000):
        last_symbol = int(np.searchsorted(bars_all.offsets, size, side="left"))
        n_rows = int(bars_all.offsets[last_symbol])
        symbols = bars_all.symbols[:last_symbol].tolist()
        bars = bars_from_prices(prices.filter(pl.col("symbol").is_in(symbols)))
        rows = np.arange(n_rows)
        outcome_s = median_time(lambda b=bars, r=rows: trade_outcomes(b, r, *barriers), args.repeat)
        out = trade_outcomes(bars, rows, *barriers)
        order = np.lexsort((bars.symbol_of_row(), bars.dates))  # date order, as training has
        dated = out.take(order)
        symbol = bars.symbol_of_row()[order]
        signal = (rng.random(n_rows) < args.signal_share).astype(np.int8)
        filter_s = median_time(lambda d=dated, s=signal, y=symbol: first_free(d, s, y), args.repeat)
        kept = first_free(dated, signal, symbol)
        print(
            f"{n_rows:,} rows ({len(symbols)} symbols): outcomes {outcome_s * 1000:.1f} ms "
            f"({n_rows / outcome_s / 1e6:.1f} M rows/s, {n_rows / outcome_s / slow_rate:,.0f}x "
            f"the reference); one-position filter on {int(signal.sum()):,} signals "
            f"{filter_s * 1000:.1f} ms ({n_rows / filter_s / 1e6:.1f} M rows/s, "
            f"{n_rows / filter_s / slow_filter_rate:,.0f}x the reference), kept {int(kept.sum()):,}"
        )

    # The option trades of every row of the last size, once per side, and one portfolio.
    vol = bars_all.close * 0 + 0.02  # a constant daily vol: Black-Scholes costs the same
    bars_vol = bars._replace(vol_20=vol[: len(bars.close)])
    started = time.perf_counter()
    option_trades(bars_vol, rows, out, 1, swing.hold_days)
    option_s = time.perf_counter() - started
    taken = dated.take(kept)
    book = stock_book(bars, taken, 1)
    days = np.unique(bars.dates)
    sim_s = median_time(lambda: simulate(book, days, Sizing(max_positions=20)), args.repeat)
    stats = portfolio_stats(simulate(book, days, Sizing(max_positions=20)), book)
    print(
        f"option trades of {len(rows):,} rows (strike, expiry, two Black-Scholes prices): "
        f"{option_s:.2f} s; portfolio of {len(book.symbol):,} trades over {len(days):,} days, "
        f"20 slots: {sim_s * 1000:.1f} ms ({stats.trades:,} taken)"
    )


if __name__ == "__main__":
    main()
