"""The pages' data: plain values built from query results, apart from HTTP and templates.

Each builder takes what `stockml.web.queries` returned (and the request's query values)
and returns the dict a template renders, so a page's logic is tested without a server.
Bad query values raise `BadRequest` (a 400 page).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stockml.web import charts, queries, trading

TRADES_SHOWN = 300  # newest trades listed on a run page (all are in the charts)
POOLED_COLUMNS = [
    ("accuracy", ".3f"),
    ("log_loss", ".3f"),
    ("top10_win_precision", ".3f"),
    ("call_precision", ".3f"),
    ("call_coverage", ".1%"),
    ("put_precision", ".3f"),
    ("put_coverage", ".1%"),
    ("call_mean_exit_return", "+.2%"),
    ("put_mean_exit_return", "+.2%"),
]
WINDOW_COLUMNS = [
    *POOLED_COLUMNS[:2],
    *POOLED_COLUMNS[3:7],
    ("t_call", ".4f"),
    ("t_put", ".4f"),
    ("calibrated", ".0f"),
]
NO_EXPLANATION = "no explanation stored for this signal: score again with `stockml signals`"


class BadRequest(ValueError):
    """A query value the page cannot use (answered 400 with the message)."""


@dataclass(frozen=True)
class SignalFilters:
    """The signals table's filters (None: any) and its sort."""

    signal: str | None = None
    sector: str | None = None
    profile: str | None = None
    sort: str = "signal"  # what to do first: BUY CALL, BUY PUT, then HOLD
    descending: bool = True

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SignalFilters:
        """From `?signal= &sector= &profile= &sort= &dir=`; BadRequest on a sort outside
        the table's columns, a direction other than asc/desc or an unknown signal."""
        sort = query.get("sort", "signal")
        direction = query.get("dir", "desc")
        if sort not in queries.SORT_COLUMNS or direction not in ("asc", "desc"):
            raise BadRequest("sort must be one of the table's columns, dir asc or desc")
        signal = query.get("signal") or None
        if signal is not None and signal not in queries.SIGNALS:
            raise BadRequest(f"signal must be one of {', '.join(queries.SIGNALS)}")
        return cls(
            signal,
            query.get("sector") or None,
            query.get("profile") or None,
            sort,
            direction == "desc",
        )

    def pick(self, rows: list[queries.Row]) -> list[queries.Row]:
        return queries.pick_signals(
            rows, self.signal, self.sector, self.profile, self.sort, self.descending
        )

    def sort_query(self, column: str) -> dict[str, str]:
        """The query of the link a column header carries: the filters kept, sorted by
        `column`, descending first and the other way when it is already so."""
        kept = {k: getattr(self, k) for k in ("signal", "sector", "profile") if getattr(self, k)}
        descending = not (self.sort == column and self.descending)
        return {**kept, "sort": column, "dir": "desc" if descending else "asc"}


def run_params(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run's `params` (JSON in `training_runs.params`) as a dict, its `profile` a dict and
    its `models` a list: runs store them flat (the profile's fields and the model names at
    the top, training/config.py), earlier ones the profile as JSON text inside that JSON;
    anything unreadable is empty. The one place the web decodes them."""
    params = _json_object(run.get("params"))
    if "hold_days" in params:  # flat params (training/config.py `TrainConfig.params`)
        params["profile"] = {
            "name": params.get("profile"),
            **{k: params[k] for k in ("hold_days", "take_profit", "stop_loss") if k in params},
        }
    if isinstance(params.get("models"), str):
        params["models"] = params["models"].split(",")
    if "profile" in params:
        profile = params["profile"]
        params["profile"] = profile if isinstance(profile, dict) else _json_object(profile)
    return params


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# The placed-trades table of a run page: (label, pooled metric after the side's prefix, format).
PLACED_COLUMNS = [
    ("trades", "placed_trades", ",.0f"),
    ("hit rate", "placed_hit_rate", ".0%"),
    ("mean after costs", "placed_mean_return", "+.1%"),
    ("mean option", "placed_mean_option_return", "+.1%"),
    ("mean stock", "placed_mean_stock_return", "+.2%"),
    ("mean costs", "placed_mean_costs", ".2%"),
    ("total return", "total_return", "+.0%"),
    ("annual", "annual_return", "+.1%"),
    ("Sharpe", "sharpe", ".2f"),
    ("Sortino", "sortino", ".2f"),
    ("max drawdown", "max_drawdown", ".0%"),
    ("its length (days)", "max_drawdown_days", ",.0f"),
    ("exposure", "exposure", ".0%"),
    ("skipped at the cap", "skipped", ",.0f"),
]
NO_CURVES = (
    "no equity curve stored for this run (recorded before placed trades were simulated): "
    "train again with `stockml train`"
)


def placed_rows(pooled: dict[str, dict]) -> list[dict[str, Any]]:
    """The placed-trades table: per side, the stack, the natr_14 ranking and the best single
    model traded the same way, each {side, model, label, values}, then the universe held
    (metrics without a side prefix); only the sets the run recorded."""
    out = []
    for side, action in trading.SIDES:
        for model in trading.TRADED:
            got = pooled.get(model, {})
            if f"{side}_placed_trades" not in got and f"{side}_sharpe" not in got:
                continue
            values = {m: got.get(f"{side}_{m}") for _, m, _ in PLACED_COLUMNS}
            label = charts.CURVE_NAMES.get(model, model)
            out.append({"side": side, "action": action, "model": model, "label": label, **values})
    universe = pooled.get(trading.UNIVERSE)
    if universe:
        values = {
            m: universe.get(m, universe.get(m.removeprefix("placed_")))
            for _, m, _ in PLACED_COLUMNS
        }
        out.append(
            {
                "side": "both",
                "action": "—",
                "model": trading.UNIVERSE,
                "label": "hold the universe",
                **values,
            }
        )
    return out


def run_view(
    run: queries.Row,
    metrics: dict[str, dict[str, dict]],
    trades: list[queries.Row],
    plots: list[str],
    notes: dict[str, str] | None = None,
    curves: list[dict] | None = None,
) -> dict[str, Any]:
    """Everything run.html shows of one run: first the verdict and live rule per side
    (`records`), the placed trades beside the baselines and the equity curves (`curves`,
    `trading.equity_curves`), then its row and params, pooled and per-window metrics and
    rules, charts, trade outcomes, intervals, the audit, plot names and each window's
    stack weights."""
    notes = notes or {}
    params = run_params(run)
    pooled = metrics.get("pooled", {})
    models = [str(m) for m in params.get("models", []) if isinstance(m, str)]
    baselines = sorted(m for m in pooled if m.startswith("baseline_"))
    windows = charts.window_order(metrics)
    figures = {
        "accuracy": charts.window_chart(
            metrics, "accuracy", ["stack", *models, *baselines], "accuracy per window"
        ),
        "log_loss": charts.window_chart(
            metrics, "log_loss", ["stack", *models, "baseline_prior"], "log loss per window"
        ),
        "pooled_call": charts.pooled_chart(
            pooled, "call_precision", "pooled: BUY CALL precision (share reaching target)"
        ),
        "brier": charts.brier_chart(metrics, ["loss", "timeout", "win"]),
        "equity": charts.equity_chart(curves or []),
    }
    stack = {w: {"stack": metrics[w].get("stack", {})} for w in ("pooled", "live") if w in metrics}
    records = trading.side_records(
        {run["run_id"]: run.get("profile")}, {run["run_id"]: notes}, {run["run_id"]: stack}
    )
    outcomes: dict[tuple[str, Any], int] = {}
    for t in trades:
        outcomes[t["signal"], t["outcome"]] = outcomes.get((t["signal"], t["outcome"]), 0) + 1
    return {
        "run": run,
        "params": {**params, "models": models},
        "records": records,
        "placed": placed_rows(pooled),
        "placed_columns": PLACED_COLUMNS,
        "no_curves": None if curves else NO_CURVES,
        "window_rules": [
            (w, notes.get(f"rule.{w}.call"), notes.get(f"rule.{w}.put"))
            for w in windows
            if f"rule.{w}.call" in notes or f"rule.{w}.put" in notes
        ],
        "metrics": metrics,
        "trades": trades,
        "pooled": pooled,
        "windows": windows,
        "figures": figures,
        "outcomes": sorted(outcomes.items(), key=lambda kv: (kv[0][0], -(kv[0][1] or 0))),
        "intervals": intervals(pooled),
        "audit": pooled.get("audit_random_split", {}),
        "plots": plots,
        "pooled_columns": POOLED_COLUMNS,
        "window_columns": WINDOW_COLUMNS,
        "shown_trades": trades[-TRADES_SHOWN:][::-1],
        "weights": {
            w: {
                m: metrics[w][m]["stack_weight"]
                for m in models
                if "stack_weight" in metrics[w].get(m, {})
            }
            for w in windows
        },
    }


def intervals(pooled: dict[str, dict]) -> list[tuple]:
    """(model, metric, value, low, high) of every pooled metric stored with an interval
    (`<metric>_ci_low` / `_ci_high`), sorted."""
    suffix = "_ci_low"
    return sorted(
        (
            model,
            metric[: -len(suffix)],
            values.get(metric[: -len(suffix)]),
            value,
            values.get(metric[: -len(suffix)] + "_ci_high"),
        )
        for model, values in pooled.items()
        for metric, value in values.items()
        if metric.endswith(suffix)
    )


def run_json(
    run: queries.Row,
    metrics: dict,
    trades: list[queries.Row],
    notes: dict[str, str] | None = None,
    curves: list[dict] | None = None,
) -> dict[str, Any]:
    """/api/runs/{id}: the run's row (params decoded), its notes (verdicts and rules),
    metrics, trades and equity curves (lists per curve), JSON-ready."""
    row = {k: queries.as_json(v) for k, v in run.items()}
    row["params"] = run_params(run)
    return {
        "run": row,
        "notes": dict(notes or {}),
        "metrics": {
            w: {m: {k: queries.as_json(v) for k, v in vals.items()} for m, vals in models.items()}
            for w, models in metrics.items()
        },
        "trades": [{k: queries.as_json(v) for k, v in t.items()} for t in trades],
        "equity_curves": [
            {
                "model": c["model"],
                "side": c["side"],
                **{k: charts.floats_or_text(c[k]) for k in ("date", "equity", "drawdown")},
            }
            for c in curves or []
        ],
    }


NO_CONTRACT = (
    "{n} BUY signal(s) carry no contract (they were scored before contracts were stored): "
    "score again with `stockml signals`"
)


def signals_view(rows: list[queries.Row], records: list[trading.SideRecord]) -> dict[str, Any]:
    """What signals.html shows beside its rows: each run's side records (verdict, live
    rule, walk-forward record), `record_of` (run_id, side) -> record, the count of BUY
    rows per (run_id, side) today, and a line when BUY rows carry no contract."""
    record_of = {(r.run_id, r.side): r for r in records}
    buys: dict[tuple[str, str], int] = {}
    bare = 0
    for row in rows:
        side = trading.ACTION_SIDE.get(row["signal"])
        if side is None:
            continue
        buys[row["run_id"], side] = buys.get((row["run_id"], side), 0) + 1
        bare += row["act_on"] is None
    return {
        "rows": rows,
        "records": records,
        "record_of": record_of,
        "buys": buys,
        "no_contract": NO_CONTRACT.format(n=bare) if bare else None,
    }


def signals_json(
    rows: list[queries.Row], record_of: dict[tuple[str, str], trading.SideRecord]
) -> list[dict[str, Any]]:
    """/api/signals rows: every column, and for a BUY its side's `record` (verdict, live
    rule and walk-forward record: trading.SideRecord; None for HOLD)."""
    records = {key: record.as_json() for key, record in record_of.items()}  # once each
    out = []
    for row in rows:
        item = {k: queries.as_json(v) for k, v in row.items() if k != "signal_rank"}
        item["record"] = records.get((row["run_id"], trading.ACTION_SIDE.get(row["signal"], "")))
        out.append(item)
    return out


def why_view(explanation: queries.Row | None) -> dict[str, Any]:
    """One signal's "why" block: the stored contributions and their chart, or the reason
    there are none."""
    if explanation is None:
        return {"error": NO_EXPLANATION}
    if explanation["note"]:
        return {"error": explanation["note"]}
    if not explanation["win"] and not explanation["loss"]:
        return {"error": NO_EXPLANATION}
    return {
        "result": explanation,
        "chart": charts.contributions_chart(explanation["win"], explanation["loss"]),
    }


def feature_rows(found, families: Mapping[str, str]) -> list[dict[str, Any]]:
    """The latest-features table: (name, family, value, percentile) per feature of
    `symbol_queries.feature_percentiles`' answer (empty when None)."""
    if found is None:
        return []
    _, present, own, pct = found
    return [
        {"name": n, "family": families.get(n, ""), "value": v, "pct": p}
        for n, v, p in zip(present, own, pct, strict=True)
    ]
