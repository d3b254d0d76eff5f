"""What `stockml signals` writes beside each signal: why (`signal_explanations` and
`signal_contributions`, see schema.EXPLANATION_DDL), and what the symbol page reads.

A run's explanations replace its earlier ones in one transaction, as its signals do.
"""

from __future__ import annotations

import duckdb
import polars as pl

from stockml.store.connection import insert_frame, transaction


def replace_explanations(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    explanations: pl.DataFrame,
    contributions: pl.DataFrame,
) -> None:
    """The run's explanations (run_id, symbol, date, models, note) and their contributions
    (run_id, symbol, date, outcome, rank, feature, value, reference, contribution),
    replacing any earlier ones of the same run."""
    with transaction(con):
        con.execute("DELETE FROM signal_contributions WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM signal_explanations WHERE run_id = ?", [run_id])
        insert_frame(con, explanations, "INSERT INTO signal_explanations SELECT * FROM _new")
        if contributions.height:
            insert_frame(con, contributions, "INSERT INTO signal_contributions SELECT * FROM _new")
