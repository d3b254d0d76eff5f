"""Signals for the newest trading day of every stock, from a run's live signal model.

The live model (base models refitted and their stack fitted on every labelled day, calibration
and thresholds chosen on that period's cross-fitted probabilities) says BUY CALL when
p_win reaches its call threshold, BUY PUT when p_loss reaches its put threshold, HOLD
otherwise. The newest days have no label yet (their future has not happened): only their
features are used, which is exactly what a live signal is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from stockml import store
from stockml.defaults import LOSS_COL, TIMEOUT_COL, WIN_COL
from stockml.errors import NothingToDoError
from training.decision import ACTIONS
from training.explain import explain_signals
from training.recorder import RunFolder, runs_root
from training.trades import CALL, PUT


@dataclass
class Signals:
    """The newest signals of a run: `frame` (the `signals` table's columns: run_id, symbol,
    date, signal, p_win, p_timeout, p_loss, threshold, profile, close and the suggested
    contract: act_on, strike, expiry, premium, target_price, stop_price, last_exit), what
    each side's placed trades achieved in the walk-forward (`track_record`) and the live
    rule (training.rules.Rule)."""

    frame: pl.DataFrame
    track_record: dict[str, float]
    rule: object
    newest_bar: dict = field(default_factory=dict)  # symbol -> its newest stored bar
    inactive: list[tuple[str, object]] = field(default_factory=list)  # (symbol, last bar)

    def summary(self) -> list[str]:
        """First each side that is off and why, then what each side did in the
        walk-forward, in the same terms."""
        off = [r.reason for r in (self.rule.call, self.rule.put) if not r.on]
        left = []
        if self.inactive:
            named = ", ".join(f"{symbol} (last bar {day})" for symbol, day in self.inactive)
            left = [
                f"not scored: {named}: inactive after repeated 404s from Yahoo "
                "(`stockml ingest --recheck-inactive` asks again)"
            ]
        return left + off + describe_track_record(self.track_record, self.rule)


def find_run(con, run_id: str | None, profile: str | None) -> tuple[str, str, str]:
    """(run_id, run_dir, profile) of the named run, else the newest of `profile` (any)."""
    where, params = [], []
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    if profile:
        where.append("profile = ?")
        params.append(profile)
    row = con.execute(
        "SELECT run_id, run_dir, profile FROM training_runs "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + "ORDER BY created_at DESC LIMIT 1",
        params,
    ).fetchone()
    if row is None:
        what = " ".join(x for x in (run_id, f"of profile {profile}" if profile else None) if x)
        raise NothingToDoError(
            f"no training run{' ' + what if what else ''} in the store: run `stockml train` first"
        )
    return row


def latest_signals(
    db_path: Path,
    run_id: str | None = None,
    profile: str | None = None,
    symbols: list[str] | None = None,
) -> Signals:
    """Score each stock's newest complete feature row (of `symbols` only, when given: the
    traded universe) with the run's live signal model (loaded through the run's folder
    beside the store, signature- and hash-checked), with the suggested contract of every
    BUY (training/contracts.py); stored in the `signals` table (replacing the run's
    earlier ones). A side whose rule is off gives no BUY of that side."""
    from features.catalog import COLUMNS
    from training.contracts import contracts_frame

    con = store.connect(db_path)
    try:
        run_id, _, profile = find_run(con, run_id, profile)
        run = RunFolder.open(runs_root(db_path), run_id)
        model = run.load_model("signal_model")
        record = run.load_json("track_record")
        params = run.load_json("params")
        # The columns the model was trained on: the catalog, then context columns if it
        # used them (NULL context, inside a window's warm-up, is NaN as in training).
        columns = list(model.columns or COLUMNS)
        latest = store.model_inputs(con, columns).drop_nulls(COLUMNS)
        if symbols:
            latest = latest.filter(pl.col("symbol").is_in(symbols))
        # Each symbol on its own newest day; one Yahoo no longer knows is left out.
        inactive = inactive_symbols(con)
        left_out = sorted(
            (s, d) for s, d in zip(latest["symbol"], latest["date"], strict=True) if s in inactive
        )
        latest = latest.filter(~pl.col("symbol").is_in(list(inactive)))
        if latest.is_empty():
            raise NothingToDoError("no stock has a complete feature row to score")
        x = latest.select(columns).to_numpy().astype(np.float64)
        proba = model.predict_proba(x)
        decided = model.decide(proba)
        threshold = np.where(
            decided == CALL, model.rule.t_call, np.where(decided == PUT, model.rule.t_put, np.nan)
        )
        out = pl.DataFrame(
            {
                "run_id": [run_id] * latest.height,
                "symbol": latest["symbol"],
                "date": latest["date"],
                "signal": [ACTIONS[int(d)] for d in decided],
                "p_win": proba[:, WIN_COL],
                "p_timeout": proba[:, TIMEOUT_COL],
                "p_loss": proba[:, LOSS_COL],
                "threshold": threshold,
                "profile": [profile] * latest.height,
                "vol_20": latest["vol_20"].cast(pl.Float64),
            }
        )
        out = out.join(closes(con, out), on=["symbol", "date"], how="left")
        out = contracts_frame(
            out, params["hold_days"], params["take_profit"], params["stop_loss"]
        ).drop("vol_20")
        store.replace_signals(con, run_id, out)
        store.replace_explanations(con, run_id, *explain_signals(model, out, x, columns))
        newest = dict(con.execute("SELECT symbol, max(date) FROM prices GROUP BY 1").fetchall())
    finally:
        store.close(con)
    return Signals(out, record, model.rule, newest, left_out)


def inactive_symbols(con) -> set[str]:
    """Symbols ingest marked inactive (Yahoo answered 404 on consecutive runs)."""
    rows = con.execute("SELECT symbol FROM ingest_status WHERE status = 'inactive'").fetchall()
    return {r[0] for r in rows}


def closes(con, frame: pl.DataFrame) -> pl.DataFrame:
    """symbol, date, close of each (symbol, date) of `frame`: the close as it traded (the
    newest day's split-adjusted close is the traded one)."""
    with store.registered(con, "_asked", frame.select("symbol", "date")):
        return store.query_pl(
            con,
            "SELECT p.symbol, p.date, p.close FROM prices p SEMI JOIN _asked a "
            "USING (symbol, date)",
        )


def describe_track_record(record: dict[str, float], rule) -> list[str]:
    """One sentence per side: what its placed trades achieved in the walk-forward test
    windows, after costs, and whether the run's verdict says to trade it."""
    lines = []
    for side, action, base, barrier in (
        ("call", "BUY CALL", "win", "target"),
        ("put", "BUY PUT", "loss", "stop"),
    ):
        trades = record.get(f"{side}_trades", 0)
        if not trades:
            lines.append(f"{action}: no placed trade in the walk-forward test windows.")
            continue
        verdict = (
            "trade it" if record.get(f"{side}_trade_it") else "the report says do not trade it"
        )
        lines.append(
            f"{action} ({verdict}): in the walk-forward, {trades:.0f} placed trades, "
            f"{record[f'{side}_precision']:.0%} reached the {barrier} vs a "
            f"{record[f'base_rate_{base}']:.0%} base rate, {record[f'{side}_hit_rate']:.0%} "
            "made money after costs; mean option return "
            f"{record[f'{side}_mean_option_return']:+.1%}, "
            f"mean stock return {record[f'{side}_mean_stock_return']:+.2%} (after costs, from "
            f"the trader's side); portfolio Sharpe {record[f'{side}_sharpe']:.2f}, max drawdown "
            f"{record[f'{side}_max_drawdown']:.0%}."
        )
    return lines
