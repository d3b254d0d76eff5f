"""The stack's signals of the test windows as trades: the stock trade from the labels and an
at-the-money option, one row each for `signal_trades`, and what each signal type achieved
(the track record `stockml signals` prints beside a new signal).

The option is bought at day t's close (30 calendar days, Black-Scholes at the 20-day
realized volatility, RISK_FREE_RATE) and sold on the label's exit day at that day's
realized volatility (training/options.py); no option-chain data is used, so implied
volatility is taken equal to realized.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from stockml.defaults import LOSS, WIN
from training.options import annualised_vol_from_feature, option_trade_returns
from training.trades import CALL, signal_stats

OPTION_EXPIRY_DAYS = 30
RISK_FREE_RATE = 0.04


def exit_volatility(con: Any, samples, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the trading date it exits on (`exit_offset` trading days later in its
    own stock's history) and its `vol_20` on that date (NaT/NaN where not stored).

    DuckDB walks the histories (the `features` table can be the whole market: it spills
    under the memory limit instead of coming into Python); only one row per signal comes
    back."""
    from stockml import store

    entry = pl.DataFrame(
        {
            "symbol": samples.symbols[rows],
            "date": samples.dates[rows],
            "offset": np.asarray(samples.exit_offset[rows], dtype=np.int64),
            "i": np.arange(len(rows)),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    with store.registered(con, "_signals", entry):
        found = store.query_pl(
            con,
            "WITH hist AS (SELECT symbol, date, vol_20, row_number() OVER "
            "(PARTITION BY symbol ORDER BY date) AS pos FROM features "
            "WHERE symbol IN (SELECT DISTINCT symbol FROM _signals)), "
            "ex AS (SELECT s.i, s.symbol, h.pos + s.offset AS pos FROM _signals s "
            "LEFT JOIN hist h USING (symbol, date)) "
            "SELECT ex.i, x.date AS exit_date, x.vol_20 FROM ex "
            "LEFT JOIN hist x ON x.symbol = ex.symbol AND x.pos = ex.pos ORDER BY ex.i",
        )
    return found["exit_date"].to_numpy(), found["vol_20"].to_numpy().astype(float)


def trades_table(con: Any, samples, windows, run_id: str) -> pl.DataFrame:
    """One row per stack signal in the test windows: the stock trade from the labels and an
    at-the-money option (Black-Scholes at realized volatility, see training/options.py)."""
    rows = np.concatenate([w.rows[w.signals != 0] for w in windows])
    signals = np.concatenate([w.signals[w.signals != 0] for w in windows])
    names = np.concatenate([np.full(int(np.sum(w.signals != 0)), w.name) for w in windows])
    exit_date, exit_vol = exit_volatility(con, samples, rows)
    exit_return = samples.exit_return[rows]
    option = option_trade_returns(
        1.0,
        1.0 + exit_return,
        annualised_vol_from_feature(samples.column("vol_20")[rows]),
        annualised_vol_from_feature(exit_vol),
        samples.exit_offset[rows],
        signals.astype(int),
        OPTION_EXPIRY_DAYS,
        RISK_FREE_RATE,
    )
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(rows),
            "window": [str(n) for n in names],
            "symbol": samples.symbols[rows],
            "date": samples.dates[rows],
            "signal": ["BUY CALL" if s == CALL else "BUY PUT" for s in signals],
            "exit_date": exit_date,
            "days_held": samples.exit_offset[rows].astype(np.int32),
            "outcome": samples.y[rows].astype(np.int32),
            "stock_return": exit_return,
            "option_return": option,
        }
    ).with_columns(pl.col("date").cast(pl.Date), pl.col("exit_date").cast(pl.Date))


def track_record(evaluation, samples, trades: pl.DataFrame) -> dict[str, float]:
    """What the stack's signals of every test window did, per side
    (training/trades.py `signal_stats`, with each signal's option return), and the test
    windows' base rates of a win and a loss."""
    rows = evaluation.rows
    signals = evaluation.pooled["stack"]["signals"]
    option = np.full(len(rows), np.nan)
    option[signals != 0] = trades["option_return"].to_numpy()
    record = signal_stats(
        signals, samples.y[rows], samples.exit_return[rows], samples.exit_offset[rows], option
    )
    record["base_rate_win"] = float(np.mean(samples.y[rows] == WIN))
    record["base_rate_loss"] = float(np.mean(samples.y[rows] == LOSS))
    return record
