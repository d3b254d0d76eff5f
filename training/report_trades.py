"""The report's opening: per side, trade it or not, the live rule, and the placed trades of
the test windows beside the baselines traded the same way (training/trading.py). Renders
only."""

from __future__ import annotations

import numpy as np

from training.trading import POSITIONS, SIDE_NAMES

ROWS = (
    ("stack", "the stack"),
    ("baseline_volatility", "natr_14 ranking"),
    ("baseline_best_base", "best single model"),
)


def _f(value, spec: str = ".3f") -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


def verdict_lines(traded, live_rule, setup, profile) -> list[str]:
    """## Trade it or not: the verdict per side, then the live rule `stockml signals` uses."""
    lines = ["## Trade it or not", ""]
    lines += [
        f"- **{sentence.split(':')[0]}**:{sentence.split(':', 1)[1]}"
        for _, sentence in (traded.verdict[side] for side in SIDE_NAMES)
    ]
    lines += [
        "",
        f"Each signal traded as it could have been placed: bought at the next session's "
        f"open as the suggested {setup.objective} (at the money, the monthly expiry nearest "
        "30 days that outlives the hold, Black-Scholes at realised volatility) and sold at "
        f"the {profile.take_profit:+.0%} / {profile.stop_loss:+.0%} barrier or the hold "
        f"limit of {profile.hold_days} sessions, one open position per symbol and side, "
        f"costs taken out (option spread {setup.costs.option_spread:.0%} of the premium "
        f"each way; stock {setup.costs.stock_each_way:.2%} each way). The portfolio stakes "
        f"1/{POSITIONS[setup.objective]} of its equity per trade, at most "
        f"{POSITIONS[setup.objective]} open, marked to market daily. A side is worth "
        "trading only when its trades made money after costs and its equity curve beat "
        "the natr_14 ranking and the best single model traded the same way (Sharpe ratio).",
        "",
        "The live rule (what `stockml signals` applies to the newest day):",
        "",
        f"- {live_rule.call.reason}",
        f"- {live_rule.put.reason}",
        "",
    ]
    return lines


def placed_lines(traded) -> list[str]:
    """## Placed trades of the test windows: per side, every traded set's figures."""
    lines = [
        "## Placed trades of the test windows",
        "",
        "| side | signals of | trades | hit rate | mean after costs | median | reached barrier "
        "| total return | annual | Sharpe | Sortino | max drawdown (sessions) | exposure |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for side, name in SIDE_NAMES.items():
        for model, label in ROWS:
            result = traded.results[model][side]
            f, s = result.figures, result.stats
            lines.append(
                f"| {name} | {label} | {f[f'{name}_placed_trades']:.0f} | "
                f"{_f(f[f'{name}_placed_hit_rate'])} | "
                f"{_f(f[f'{name}_placed_mean_return'], '+.1%')} | "
                f"{_f(f[f'{name}_placed_median_return'], '+.1%')} | "
                f"{_f(f[f'{name}_placed_barrier_rate'])} | {_f(s['total_return'], '+.0%')} | "
                f"{_f(s['annual_return'], '+.1%')} | {_f(s['sharpe'], '.2f')} | "
                f"{_f(s['sortino'], '.2f')} | {_f(s['max_drawdown'], '.0%')} "
                f"({s['max_drawdown_days']:.0f}) | {_f(s['exposure'], '.0%')} |"
            )
    u = traded.universe[0]
    lines += [
        f"| both | hold the traded universe | – | – | – | – | – | {_f(u['total_return'], '+.0%')}"
        f" | {_f(u['annual_return'], '+.1%')} | {_f(u['sharpe'], '.2f')} | "
        f"{_f(u['sortino'], '.2f')} | {_f(u['max_drawdown'], '.0%')} "
        f"({u['max_drawdown_days']:.0f}) | {_f(u['exposure'], '.0%')} |",
        "",
        "Hit rate: the share of trades with a positive return after costs; reached barrier: "
        "the share that hit the side's own barrier (the target for a call, the stop for a "
        "put). The equity curves are `equity.png` (and the run page). No option-chain data "
        "is used: implied volatility is taken equal to realized, so real option returns "
        "differ.",
        "",
    ]
    return lines
