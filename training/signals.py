"""Signals for the newest trading day of every stock, from a run's live signal model.

The live model (base models refitted and their stack fitted on every labelled day, calibration
and thresholds chosen on that period's cross-fitted probabilities) says BUY CALL when
p_win reaches its call threshold, BUY PUT when p_loss reaches its put threshold, HOLD
otherwise. The newest days have no label yet (their future has not happened): only their
features are used, which is exactly what a live signal is.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    frame: (
        pl.DataFrame
    )  # run_id, symbol, date, signal, p_win, p_timeout, p_loss, threshold, profile
    track_record: dict[str, float]  # what each signal type achieved in the walk-forward
    t_call: float
    t_put: float

    def summary(self) -> list[str]:
        return describe_track_record(self.track_record, self.t_call, self.t_put)


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


def latest_signals(db_path: Path, run_id: str | None = None, profile: str | None = None) -> Signals:
    """Score each stock's newest complete feature row with the run's live signal model
    (loaded through the run's folder beside the store, hash- and signature-checked); stored
    in the `signals` table (replacing the run's earlier ones)."""
    from features.catalog import COLUMNS

    con = store.connect(db_path)
    try:
        run_id, _, profile = find_run(con, run_id, profile)
        run = RunFolder.open(runs_root(db_path), run_id)
        model = run.load_model("signal_model")
        record = run.load_json("track_record")
        # The columns the model was trained on: the catalog, then context columns if it
        # used them (NULL context, inside a window's warm-up, is NaN as in training).
        columns = list(model.columns or COLUMNS)
        latest = store.model_inputs(con, columns).drop_nulls(COLUMNS)
        if latest.is_empty():
            raise NothingToDoError("no stock has a complete feature row to score")
        x = latest.select(columns).to_numpy().astype(np.float64)
        proba = model.predict_proba(x)
        decided = model.decide(proba)
        threshold = np.where(
            decided == CALL, model.t_call, np.where(decided == PUT, model.t_put, np.nan)
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
            }
        )
        store.replace_signals(con, run_id, out)
        store.replace_explanations(con, run_id, *explain_signals(model, out, x, columns))
    finally:
        store.close(con)
    return Signals(out, record, model.t_call, model.t_put)


def describe_track_record(record: dict[str, float], t_call: float, t_put: float) -> list[str]:
    """One sentence per signal type: what it achieved in the walk-forward test windows."""
    lines = []
    for side, action, base in (("call", "BUY CALL", "win"), ("put", "BUY PUT", "loss")):
        trades = record.get(f"{side}_trades", 0)
        if not trades:
            lines.append(f"{action}: no such signal in the walk-forward test windows.")
            continue
        lines.append(
            f"{action} (threshold {t_call if side == 'call' else t_put:.3f}): in the "
            f"walk-forward, {trades:.0f} signals, {record[f'{side}_precision']:.0%} reached "
            f"the {'target' if side == 'call' else 'stop'} vs a {record[f'base_rate_{base}']:.0%} "
            f"base rate; mean stock return {record[f'{side}_mean_stock_return']:+.2%} from "
            f"the trader's side, mean option return "
            f"{record.get(f'{side}_mean_option_return', float('nan')):+.1%}."
        )
    return lines
