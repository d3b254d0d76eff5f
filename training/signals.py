"""Signals for the newest trading day of every stock, from a run's stacked models.

BUY CALL when the stack's most likely outcome is a win, BUY PUT when it is a loss, HOLD
otherwise. The newest days have no label yet (their future has not happened): only their
features are used, which is exactly what a live signal is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from stockml import store
from stockml.errors import NothingToDoError
from training.ray_runner import load_model

ACTIONS = {-1: "BUY PUT", 0: "HOLD", 1: "BUY CALL"}


def latest_signals(db_path: Path, run_id: str | None = None) -> pl.DataFrame:
    """symbol, date, signal, p_win, p_timeout, p_loss for each stock's newest complete day;
    also stored in the `signals` table."""
    from features.catalog import COLUMNS

    con = store.connect(db_path)
    try:
        row = con.execute(
            "SELECT run_id, run_dir, params FROM training_runs "
            + ("WHERE run_id = ? " if run_id else "")
            + "ORDER BY created_at DESC LIMIT 1",
            [run_id] if run_id else [],
        ).fetchone()
        if row is None:
            raise NothingToDoError(
                f"no training run{' ' + run_id if run_id else ''} in {db_path}: "
                "run `stockml train` first"
            )
        run_id, run_dir, params = row
        import json

        models = json.loads(params)["models"]
        latest = store.query_pl(
            con,
            "SELECT f.* FROM features f JOIN (SELECT symbol, max(date) AS date FROM features "
            "GROUP BY symbol) m USING (symbol, date) ORDER BY symbol",
        ).drop_nulls(COLUMNS)
        if latest.is_empty():
            raise NothingToDoError("no stock has a complete feature row to score")
        fits = Path(run_dir) / "fits"
        x = latest.select(COLUMNS).to_numpy().astype(np.float64)
        base = np.hstack([load_model(fits, f"{m}__full").predict_proba(x) for m in models])
        meta = load_model(Path(run_dir), "meta")
        proba = meta.predict_proba(base)
        best = np.array([-1, 0, 1])[proba.argmax(axis=1)]
        out = pl.DataFrame(
            {
                "run_id": [run_id] * latest.height,
                "symbol": latest["symbol"],
                "date": latest["date"],
                "signal": [ACTIONS[int(b)] for b in best],
                "p_win": proba[:, 2],
                "p_timeout": proba[:, 1],
                "p_loss": proba[:, 0],
            }
        )
        store.replace_signals(con, run_id, out)
    finally:
        con.close()
    return out
