"""The test windows traded as they could have been placed, beside the baselines traded the
same way: the trades (`signal_trades`), what each side earned after costs, one equity curve
per side, and the verdict.

Each signal set (the stack's, the natr_14 ranking's with as many calls and puts per window,
the best single base model's with its own rule) is traded the same way: every signal enters
at the next session's open, one open position per symbol and side (a signal while one is
open is no new trade), exits at the barrier or the hold limit (backtest/execution.py), as
the objective's trade (`RuleSetup.objective`: the suggested option, or the stock) after the
costs of `RuleSetup.costs`. Placed trades run across window boundaries in date order, so a
trade entered late in one window blocks a signal early in the next.

The portfolio: an equal stake of 1 / N of the equity per trade, at most N open, one per
symbol, marked to market every session (backtest/portfolio.py), over every test day; N is
POSITIONS[objective]: 25 for options (4 % of equity per premium, at most all of it in 25
premiums: an option can lose its whole stake, so the stake is kept small, as traders size
them), 10 for stocks; holding the traded universe (equal weight, bought at the first open,
held) is the passive benchmark. The same curve and figures go into the report, its
equity.png, `model_metrics` and the `equity_curves` table the page draws.

Verdict per side: "trade it" only when the stack's placed trades made money after costs
over the test windows (mean return > 0), its portfolio grew (annual return > 0: a positive
mean a trade can still ruin an account staked this way) and its equity curve beat the
natr_14 ranking's and the best base model's traded the same way (Sharpe ratio); else "do
not trade it", saying which test it failed. Puts are also read against their own base
rate (the share of test stock-days that reached the stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from backtest.portfolio import Sizing
from stockml.defaults import LOSS, WIN
from training.rules import ACTION, TradeBook, placed
from training.trades import CALL, PUT

POSITIONS = {"option": 25, "stock": 10}
TRADED = ("stack", "baseline_volatility", "baseline_best_base")
SIDE_NAMES = {CALL: "call", PUT: "put"}


@dataclass
class SideResult:
    """One signal set's trades of one side over the test windows: `kept` (bool over the
    pooled test rows: the signals that opened a trade), the figures of those trades and of
    their portfolio (`stats`, backtest.portfolio.PortfolioStats as a dict) and its curve
    (polars: date, equity, drawdown, positions)."""

    kept: np.ndarray
    figures: dict[str, float]
    stats: dict[str, float]
    curve: pl.DataFrame


@dataclass
class TradeReport:
    """name -> side -> SideResult; the universe's buy and hold (stats, curve); the
    stack's trades as `signal_trades` rows; the verdict per side; per-window figures
    (window -> name -> metric -> value)."""

    results: dict[str, dict[int, SideResult]]
    universe: tuple[dict[str, float], pl.DataFrame]
    trades: pl.DataFrame
    verdict: dict[int, tuple[bool, str]]
    by_window: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    objective: str = "option"


def trade_figures(net: np.ndarray, barrier: np.ndarray, side: int, prefix: str) -> dict:
    """Figures of placed trades (net returns after costs, barriers reached): their count,
    hit rate (net > 0), mean and median net return, and the share that reached the side's
    own barrier (the target for a call, the stop for a put)."""
    done = np.isfinite(net)
    net = net[done]
    return {
        f"{prefix}_placed_trades": float(len(net)),
        f"{prefix}_placed_hit_rate": float(np.mean(net > 0)) if len(net) else np.nan,
        f"{prefix}_placed_mean_return": float(np.mean(net)) if len(net) else np.nan,
        f"{prefix}_placed_median_return": float(np.median(net)) if len(net) else np.nan,
        f"{prefix}_placed_barrier_rate": float(np.mean(barrier[done] == side))
        if len(net)
        else np.nan,
    }


def side_book(book: TradeBook, rows: np.ndarray, side: int, setup, hold_days: int, priority):
    """The portfolio Book of the trades at sample `rows` (placed, one side): option
    trades marked at Black-Scholes, or stock trades at the close."""
    from backtest.portfolio import stock_book
    from training.option_trades import option_book

    outcomes = book.outcomes.take(rows)
    if setup.objective == "option":
        trades, _ = option_book(
            book.bars, book.rows[rows], outcomes, side, hold_days, setup.costs, priority=priority
        )
        return trades
    return stock_book(book.bars, outcomes, side, setup.costs, priority)


def trade_set(
    book: TradeBook,
    rows: np.ndarray,
    signals: np.ndarray,
    score: np.ndarray,
    days: np.ndarray,
    setup,
    hold_days: int,
) -> dict[int, SideResult]:
    """Both sides of one signal set over the pooled test `rows` (date order): placed trades,
    their figures, the portfolio (cap ties broken by `score`, higher first)."""
    from backtest.portfolio import equity_frame, portfolio_stats, simulate

    outcomes, symbol = book.outcomes.take(rows), book.symbol[rows]
    out = {}
    for side, name in SIDE_NAMES.items():
        kept = placed(outcomes, symbol, signals, side)
        net = book.net[side][rows][kept]
        figures = trade_figures(net, outcomes.barrier[kept], side, name)
        figures[f"{name}_placed_mean_option_return"] = _mean(book.option[side].net[rows][kept])
        figures[f"{name}_placed_mean_stock_return"] = _mean(book.stock[side].net[rows][kept])
        figures[f"{name}_placed_mean_costs"] = _mean(
            (book.option if setup.objective == "option" else book.stock)[side].costs[rows][kept]
        )
        chosen = rows[kept]
        priority = side * score[kept] if score is not None else None
        trades = side_book(book, chosen, side, setup, hold_days, priority)
        portfolio = simulate(trades, days, Sizing(max_positions=POSITIONS[setup.objective]))
        stats = portfolio_stats(portfolio, trades).as_dict()
        out[side] = SideResult(kept, figures, stats, equity_frame(portfolio))
    return out


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if len(values) else np.nan


def verdict_of(results: dict, side: int, base_rate: float, precision: float) -> tuple[bool, str]:
    """(trade it?, the sentence): the stack's side against the natr_14 ranking and the best
    base model traded the same way (module docstring)."""
    name, action = SIDE_NAMES[side], ACTION[side]
    stack = results["stack"][side]
    trades = stack.figures[f"{name}_placed_trades"]
    mean = stack.figures[f"{name}_placed_mean_return"]
    sharpe = stack.stats["sharpe"]
    rivals = {
        "the natr_14 ranking": results["baseline_volatility"][side].stats["sharpe"],
        "the best single model": results["baseline_best_base"][side].stats["sharpe"],
    }
    facts = (
        f"{trades:.0f} placed trades, mean {_pct(mean)} after costs, Sharpe {_num(sharpe)} "
        + ", ".join(f"vs {_num(v)} for {k} traded the same way" for k, v in rivals.items())
    )
    if side == PUT:
        facts += f"; {_share(precision)} reached the stop vs a {_share(base_rate)} base rate"
    if not trades:
        return False, f"{action}: do not trade it: it placed no trade in the test windows."
    if not mean > 0:
        return False, f"{action}: do not trade it: its trades lost money after costs ({facts})."
    # A positive mean a trade is not enough: staked as the sizing rule stakes them, the
    # trades must grow the account (a run of losses on full exposure can ruin it first).
    annual, drawdown = stack.stats.get("annual_return"), stack.stats.get("max_drawdown")
    if annual is not None and np.isfinite(annual) and not annual > 0:
        return False, (
            f"{action}: do not trade it: its portfolio lost money, {_pct(annual)} a year "
            f"(max drawdown {_pct(drawdown, 0)}), though each trade made {_pct(mean)} on "
            f"average ({facts})."
        )
    beaten = [k for k, v in rivals.items() if np.isfinite(v) and not sharpe > v]
    if beaten:
        return False, (
            f"{action}: do not trade it: {' and '.join(beaten)} did as well or better ({facts})."
        )
    return True, f"{action}: trade it ({facts})."


def _pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:+.{digits}%}"


def _share(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.0%}"


def _num(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.2f}"


def trade_windows(samples, lay, windows, evaluation, book: TradeBook, config, run_id: str):
    """The TradeReport of a run's test windows (module docstring)."""
    from backtest.portfolio import equity_frame, hold_universe
    from training.option_trades import trade_columns

    rows = evaluation.rows
    days = lay.days[lay.bounds[lay.first_window] :].astype("datetime64[D]")
    setup, hold_days = config.rules, config.profile.hold_days
    pooled = evaluation.pooled
    results = {
        name: trade_set(
            book,
            rows,
            pooled[name]["signals"],
            pooled[name]["direction"] if pooled[name]["direction"] is not None else None,
            days,
            setup,
            hold_days,
        )
        for name in TRADED
    }
    traded = np.unique(book.symbol[rows])
    ubook, upf = hold_universe(book.bars, days, setup.costs, only=traded)
    from backtest.portfolio import portfolio_stats

    universe = (portfolio_stats(upf, ubook).as_dict(), equity_frame(upf))
    y = samples.y[rows]
    verdict = {
        side: verdict_of(
            results,
            side,
            float(np.mean(y == (WIN if side == CALL else LOSS))),
            pooled["stack"]["metrics"][f"{SIDE_NAMES[side]}_precision"],
        )
        for side in SIDE_NAMES
    }
    window_of = np.concatenate([np.full(len(w.rows), w.name) for w in windows])
    by_window: dict[str, dict[str, dict[str, float]]] = {}
    for w in windows:
        inside = window_of == w.name
        for name in TRADED:
            out = by_window.setdefault(w.name, {}).setdefault(name, {})
            for side, side_name in SIDE_NAMES.items():
                kept = results[name][side].kept & inside
                out.update(
                    trade_figures(
                        book.net[side][rows][kept],
                        book.outcomes.barrier[rows][kept],
                        side,
                        side_name,
                    )
                )
    stack = results["stack"]
    frames = []
    for side in SIDE_NAMES:
        kept = stack[side].kept
        at = rows[kept]
        columns = trade_columns(
            book.outcomes.take(at),
            type(book.stock[side])(*(a[at] for a in book.stock[side])),
            type(book.option[side])(*(a[at] for a in book.option[side])),
            costs_of=setup.objective,
        )
        keys = pl.DataFrame(
            {
                "run_id": pl.Series([run_id] * len(at), dtype=pl.String),
                "window": pl.Series(window_of[kept].astype(str), dtype=pl.String),
                "symbol": pl.Series(samples.symbols[at].astype(str), dtype=pl.String),
                "date": pl.Series(samples.dates[at]).cast(pl.Date),
                "signal": pl.Series([ACTION[side]] * len(at), dtype=pl.String),
            }
        )
        frames.append(pl.concat([keys, columns], how="horizontal"))
    trades = pl.concat(frames).sort("date", "symbol")
    return TradeReport(results, universe, trades, verdict, by_window, setup.objective)


def track_record(report: TradeReport, evaluation, samples) -> dict[str, float]:
    """What the stack's signals of every test window did as placed trades, per side (the
    record `stockml signals` prints beside a new signal): trades, the share that reached
    the side's barrier, hit rate, mean return after costs (option and stock), the
    portfolio's Sharpe and maximum drawdown, whether the verdict says trade it; the test
    windows' base rates of a win and a loss."""
    rows = evaluation.rows
    out: dict[str, float] = {}
    for side, name in SIDE_NAMES.items():
        result = report.results["stack"][side]
        f = result.figures
        out.update(
            {
                f"{name}_trades": f[f"{name}_placed_trades"],
                f"{name}_precision": f[f"{name}_placed_barrier_rate"],
                f"{name}_hit_rate": f[f"{name}_placed_hit_rate"],
                f"{name}_mean_return": f[f"{name}_placed_mean_return"],
                f"{name}_mean_option_return": f[f"{name}_placed_mean_option_return"],
                f"{name}_mean_stock_return": f[f"{name}_placed_mean_stock_return"],
                f"{name}_sharpe": result.stats["sharpe"],
                f"{name}_max_drawdown": result.stats["max_drawdown"],
                f"{name}_annual_return": result.stats["annual_return"],
                f"{name}_trade_it": float(report.verdict[side][0]),
            }
        )
    out["base_rate_win"] = float(np.mean(samples.y[rows] == WIN))
    out["base_rate_loss"] = float(np.mean(samples.y[rows] == LOSS))
    return out


def trading_metrics(report: TradeReport) -> list[tuple[str, str, str, float]]:
    """The report's figures as `model_metrics` rows: per window and pooled the placed
    trades' figures of each traded set; pooled, each set's portfolio statistics per side
    (`<side>_<stat>`), the universe's (`baseline_hold_universe`), and the verdict
    (`stack`, `<side>_trade_it`)."""
    rows = []
    for window, table in report.by_window.items():
        for name, values in table.items():
            rows += [(window, name, k, float(v)) for k, v in values.items()]
    for name, sides in report.results.items():
        for side, result in sides.items():
            prefix = SIDE_NAMES[side]
            rows += [("pooled", name, k, float(v)) for k, v in result.figures.items()]
            rows += [("pooled", name, f"{prefix}_{k}", float(v)) for k, v in result.stats.items()]
    rows += [
        ("pooled", "baseline_hold_universe", k, float(v)) for k, v in report.universe[0].items()
    ]
    rows += [
        ("pooled", "stack", f"{SIDE_NAMES[s]}_trade_it", float(ok))
        for s, (ok, _) in report.verdict.items()
    ]
    return rows


def equity_curves(report: TradeReport, run_id: str) -> pl.DataFrame:
    """Every curve of the report as `equity_curves` rows: run_id, model, side ('call',
    'put'; 'both' for the universe), date, equity, drawdown, positions."""
    frames = [
        result.curve.with_columns(
            pl.lit(run_id).alias("run_id"),
            pl.lit(name).alias("model"),
            pl.lit(SIDE_NAMES[side]).alias("side"),
        )
        for name, sides in report.results.items()
        for side, result in sides.items()
    ]
    frames.append(
        report.universe[1].with_columns(
            pl.lit(run_id).alias("run_id"),
            pl.lit("baseline_hold_universe").alias("model"),
            pl.lit("both").alias("side"),
        )
    )
    columns = ["run_id", "model", "side", "date", "equity", "drawdown", "positions"]
    return pl.concat([f.select(columns) for f in frames]).with_columns(
        pl.col("positions").cast(pl.Int32)
    )
