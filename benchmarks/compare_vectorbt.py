"""Cross-check of the portfolio accounting against vectorbt's Portfolio.from_signals.

Not part of the suite: vectorbt is no dependency of stockml (it brings ipython, ipywidgets and
~40 packages). Run it where vectorbt is installed beside our pins, e.g. a scratch venv made
with `pip install -c requirements.lock vectorbt polars pyarrow structlog`:

    PYTHONPATH=. /tmp/venv/bin/python benchmarks/compare_vectorbt.py [--symbols AAPL JPM XOM]

Per symbol, random signals are turned into trades by our rules (next-open entry, barriers,
one position at a time), then replayed in vectorbt with the same fills (entry at the open,
exit at our exit price, a fee each way) and all the cash in one position (our Sizing with
max_positions=1 stakes the same): the two daily equity curves must agree, long and short.
The barrier rules themselves are checked against the plain-Python reference in the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PARQUET = ROOT.parent / "shared" / "data" / "sp500_daily.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--symbols", nargs="+", default=["AAPL", "JPM", "XOM", "MSFT", "NVDA", "KO"]
    )
    parser.add_argument("--fee", type=float, default=0.001)
    args = parser.parse_args()

    import pandas as pd
    import vectorbt as vbt

    from backtest.costs import TradeCosts
    from backtest.execution import bars_from_prices, first_free, trade_outcomes
    from backtest.portfolio import Sizing, simulate, stock_book

    prices = pl.read_parquet(PARQUET).filter(pl.col("date").dt.year() >= 2012)
    rng = np.random.default_rng(24)
    worst = 0.0
    for symbol in args.symbols:
        if prices.filter(pl.col("symbol") == symbol).is_empty():
            print(f"{symbol}: not in the shared data")
            continue
        bars = bars_from_prices(prices.filter(pl.col("symbol") == symbol))
        n = len(bars.close)
        rows = np.flatnonzero(rng.random(n) < 0.05)
        out = trade_outcomes(bars, rows, 14, 0.10, -0.05)
        kept = first_free(out, np.ones(len(rows)), np.zeros(len(rows), dtype=int))
        # vectorbt has one price per bar, so a trade entered at an open and stopped out in
        # the same session cannot be replayed there: those are left out of both books.
        trades = out.take(kept & np.isfinite(out.barrier) & (out.sessions > 1))
        for side, direction in ((1, "longonly"), (-1, "shortonly")):
            costs = TradeCosts(stock_commission=0.0, stock_slippage=args.fee)
            book = stock_book(bars, trades, side, costs)
            ours = simulate(book, bars.dates, Sizing(max_positions=1)).equity
            entries = np.zeros(n, dtype=bool)
            exits = np.zeros(n, dtype=bool)
            entries[trades.entry_index] = True
            exits[trades.exit_index] = True
            price = bars.close.copy()
            price[trades.entry_index] = trades.entry_price
            price[trades.exit_index] = trades.exit_price
            index = pd.DatetimeIndex(bars.dates)
            theirs = vbt.Portfolio.from_signals(
                pd.Series(bars.close, index=index),
                pd.Series(entries, index=index),
                pd.Series(exits, index=index),
                price=pd.Series(price, index=index),
                fees=args.fee,
                init_cash=1.0,
                direction=direction,
                freq="1D",
            )
            value = theirs.value().to_numpy()
            gap = float(np.max(np.abs(ours / value - 1)))
            worst = max(worst, gap)
            print(
                f"{symbol} {direction}: {len(trades.entry_index)} trades, final equity ours "
                f"{ours[-1]:.6f} vectorbt {value[-1]:.6f}, largest daily gap {gap:.2e}"
            )
    print(f"largest relative gap over every day, symbol and side: {worst:.2e}")


if __name__ == "__main__":
    main()
