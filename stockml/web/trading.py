"""What a run says to trade, as the pages read it: the verdict and the live rule per side,
the side's walk-forward record of placed trades, and the equity curves.

All of it is written by `stockml train` (training/record.py, training/trading.py):
`run_notes` holds the sentences ('verdict.call', 'rule.live.put', ...), `model_metrics`
the figures (window 'pooled': the placed trades and the portfolio of each traded set;
window 'live': the rule `stockml signals` applies), `equity_curves` the one equity
definition the report's equity.png also draws. A store recorded before those existed
(the server reads a read-only copy, never migrated) has none of them: every function then
answers empty, and `SideRecord.missing` says in one line what to run.

Reads are SQL with parameters, like `queries`; `side_records` is pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np

from stockml.web.queries import as_json, has_table

SIDES = (("call", "BUY CALL"), ("put", "BUY PUT"))
ACTION_SIDE = {action: side for side, action in SIDES}
# Traded signal sets with a curve per side, in the order the page lists them; the universe
# held (side 'both') is the market beside them.
TRADED = ("stack", "baseline_volatility", "baseline_best_base")
UNIVERSE = "baseline_hold_universe"
NO_RECORD = (
    "this run was recorded before placed trades and verdicts: train again with "
    "`stockml train` to see whether to trade it"
)
# The record's figures: field -> the pooled `stack` metric (after the side's prefix).
RECORD_METRICS = {
    "trades": "placed_trades",
    "hit_rate": "placed_hit_rate",
    "mean_option_return": "placed_mean_option_return",
    "mean_stock_return": "placed_mean_stock_return",
    "mean_costs": "placed_mean_costs",
    "barrier_rate": "placed_barrier_rate",
    "sharpe": "sharpe",
    "max_drawdown": "max_drawdown",
    "annual_return": "annual_return",
}


# A trade's outcome is the barrier the stock reached (+1 upper, -1 lower, 0 the hold limit,
# None still open); whether that was a gain depends on the side: a put gains on the way down.
BARRIERS = {1: "target ↑", -1: "stop ↓", 0: "hold limit", None: "open"}


def outcome_for_trader(signal: str, outcome: int | None) -> tuple[str, str]:
    """(label, kind) of a trade's outcome seen from the trader's side: the barrier reached
    ('target ↑', 'stop ↓', 'hold limit', 'open') and 'gain', 'loss', 'flat' (the hold
    limit) or 'open'. For a BUY PUT the stop (the stock fell) is the gain."""
    label = BARRIERS.get(outcome, str(outcome))
    if outcome is None:
        return label, "open"
    if outcome == 0:
        return label, "flat"
    up = outcome > 0
    return label, "gain" if up == (signal != "BUY PUT") else "loss"


@dataclass(frozen=True)
class SideRecord:
    """One side of one run: the verdict ("trade it" or not, and the sentence), the live
    rule (on or off, and its sentence) and the walk-forward record of its placed trades
    (after costs; NaN when not recorded). `missing` is the line to show instead when the
    run predates all of it."""

    run_id: str
    profile: str | None
    side: str  # 'call' | 'put'
    action: str  # 'BUY CALL' | 'BUY PUT'
    verdict: str | None
    trade_it: bool | None
    rule: str | None
    rule_on: bool | None
    trades: float
    hit_rate: float
    mean_option_return: float
    mean_stock_return: float
    mean_costs: float
    barrier_rate: float
    sharpe: float
    max_drawdown: float
    annual_return: float
    missing: str | None

    def as_json(self) -> dict[str, Any]:
        return {k: as_json(v) for k, v in asdict(self).items()}


def run_notes(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, str]]:
    """run_id -> note -> sentence of the given runs; empty without a `run_notes` table."""
    if not run_ids or not has_table(cur, "run_notes"):
        return {}
    out: dict[str, dict[str, str]] = {}
    for run_id, note, text in cur.execute(
        "SELECT run_id, note, text FROM run_notes WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall():
        out.setdefault(run_id, {})[note] = text
    return out


def stack_figures(
    cur: duckdb.DuckDBPyConnection, run_ids: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """run_id -> window ('pooled', 'live') -> metric -> value of model `stack`."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    if not run_ids:
        return out
    for run_id, window, metric, value in cur.execute(
        "SELECT run_id, \"window\", metric, value FROM model_metrics WHERE model = 'stack' "
        "AND \"window\" IN ('pooled', 'live') AND list_contains(?, run_id)",
        [run_ids],
    ).fetchall():
        out.setdefault(run_id, {}).setdefault(window, {})[metric] = value
    return out


def side_records(
    runs: dict[str, str | None],
    notes: dict[str, dict[str, str]],
    figures: dict[str, dict[str, dict[str, float]]],
) -> list[SideRecord]:
    """Both sides of each run of `runs` (run_id -> profile), in that order, call first,
    from `run_notes` and `stack_figures` answers."""
    out = []
    for run_id, profile in runs.items():
        said = notes.get(run_id, {})
        pooled = figures.get(run_id, {}).get("pooled", {})
        live = figures.get(run_id, {}).get("live", {})
        for side, action in SIDES:
            trade_it = pooled.get(f"{side}_trade_it")
            rule_on = live.get(f"{side}_rule_on")
            verdict = said.get(f"verdict.{side}")
            known = verdict is not None or trade_it is not None
            out.append(
                SideRecord(
                    run_id=run_id,
                    profile=profile,
                    side=side,
                    action=action,
                    verdict=verdict,
                    trade_it=None if trade_it is None else bool(trade_it),
                    rule=said.get(f"rule.live.{side}"),
                    rule_on=None if rule_on is None else bool(rule_on),
                    **{
                        k: float(pooled.get(f"{side}_{m}", np.nan))
                        for k, m in RECORD_METRICS.items()
                    },
                    missing=None if known else NO_RECORD,
                )
            )
    return out


def equity_curves(cur: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The run's curves, each {model, side, date (ISO text), equity, drawdown, positions}
    with lists in date order: the traded sets (stack, then the baselines) per side, then
    the universe held; empty when the store has none for the run."""
    if not has_table(cur, "equity_curves"):
        return []
    frame = cur.execute(
        "SELECT model, side, strftime(date, '%Y-%m-%d') AS date, equity, drawdown, "
        "positions::DOUBLE AS positions FROM equity_curves WHERE run_id = ? "
        "ORDER BY model, side, date",
        [run_id],
    ).fetchnumpy()
    model, side = np.asarray(frame["model"]), np.asarray(frame["side"])
    curves = []
    order = {name: i for i, name in enumerate((*TRADED, UNIVERSE))}
    keys = sorted(
        {(str(m), str(s)) for m, s in zip(model, side, strict=True)},
        key=lambda k: (k[1] == "both", k[1], order.get(k[0], len(order)), k[0]),
    )
    for m, s in keys:
        at = (model == m) & (side == s)
        curves.append(
            {
                "model": m,
                "side": s,
                **{
                    c: np.asarray(frame[c])[at] for c in ("date", "equity", "drawdown", "positions")
                },
            }
        )
    return curves
