"""What training writes: `training_runs`, `model_metrics`, `training_fits`, `signals` and
`signal_trades`.

A run's row, all its metrics and the record of every fit (the Ray node and host it ran on)
are written together, and a run's signals replace any earlier ones of the same run, so a
reader never sees half a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from stockml.store.connection import insert_frame, transaction, utcnow


def record_training_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    profile: str,
    info: dict[str, Any],
    fingerprint: str,
    code_version: str,
    params: str,
    run_dir: str,
    metrics: list[tuple[str, str, str, float]],
    trades: pl.DataFrame | None = None,
    fits: Sequence[Any] = (),
    curves: pl.DataFrame | None = None,
    notes: dict[str, str] | None = None,
) -> None:
    """One row in training_runs, every (window, model, metric, value) in model_metrics,
    the run's signal trades, one training_fits row per fit and its equity curves, together.
    `fits` holds records with model, fold, node_id, host, seconds and rows attributes
    (training.recorder.FitRecord), at most one per (model, fold); `curves` the
    `equity_curves` columns; `notes` note -> sentence for `run_notes`."""
    with transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO training_runs "
            "VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                utcnow(),
                profile,
                info["train_start"],
                info["train_end"],
                info["test_start"],
                info["test_end"],
                info["n_train"],
                info["n_test"],
                fingerprint,
                code_version,
                params,
                run_dir,
            ],
        )
        con.execute("DELETE FROM model_metrics WHERE run_id = ?", [run_id])
        rows = [(run_id, w, model, metric, float(value)) for w, model, metric, value in metrics]
        insert_frame(
            con,
            pl.DataFrame(
                rows, schema=["run_id", "window", "model", "metric", "value"], orient="row"
            ),
            "INSERT INTO model_metrics SELECT * FROM _new",
        )
        con.execute("DELETE FROM signal_trades WHERE run_id = ?", [run_id])
        if trades is not None and trades.height:
            insert_frame(con, trades, "INSERT INTO signal_trades BY NAME SELECT * FROM _new")
        con.execute("DELETE FROM equity_curves WHERE run_id = ?", [run_id])
        if curves is not None and curves.height:
            insert_frame(con, curves, "INSERT INTO equity_curves BY NAME SELECT * FROM _new")
        con.execute("DELETE FROM run_notes WHERE run_id = ?", [run_id])
        if notes:
            con.executemany(
                "INSERT INTO run_notes VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in notes.items()],
            )
        con.execute("DELETE FROM training_fits WHERE run_id = ?", [run_id])
        if fits:
            con.executemany(
                "INSERT INTO training_fits VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, f.model, f.fold, f.node_id, f.host, f.seconds, f.rows) for f in fits],
            )


def append_metrics(
    con: duckdb.DuckDBPyConnection, run_id: str, metrics: list[tuple[str, str, str, float]]
) -> None:
    """Add (window, model, metric, value) rows to a recorded run (e.g. its ablation table),
    replacing rows of the same (window, model, metric), in one transaction."""
    frame = pl.DataFrame(
        [(run_id, w, m, k, float(v)) for w, m, k, v in metrics],
        schema=["run_id", "window", "model", "metric", "value"],
        orient="row",
    )
    with transaction(con):
        insert_frame(
            con,
            frame,
            "DELETE FROM model_metrics USING _new WHERE model_metrics.run_id = _new.run_id "
            'AND model_metrics."window" = _new."window" AND model_metrics.model = _new.model '
            "AND model_metrics.metric = _new.metric; "
            "INSERT INTO model_metrics SELECT * FROM _new",
        )


def replace_signals(con: duckdb.DuckDBPyConnection, run_id: str, frame: pl.DataFrame) -> None:
    """The run's latest signals, replacing any earlier ones of the same run."""
    with transaction(con):
        con.execute("DELETE FROM signals WHERE run_id = ?", [run_id])
        insert_frame(con, frame, "INSERT INTO signals BY NAME SELECT * FROM _new")
