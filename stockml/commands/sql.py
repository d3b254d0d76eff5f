"""`stockml sql`: read-only SQL over the store, as a table or into CSV/Parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def sql(
    query: str = typer.Argument(..., help='One SQL statement, e.g. "SELECT * FROM ingest_status".'),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store, opened read-only."),
    out: Path = typer.Option(
        None, "--out", help="Write all rows to a .csv or .parquet file instead."
    ),
    limit: int = typer.Option(
        50, "--limit", help="Rows shown in the terminal table (not applied to --out)."
    ),
) -> None:
    """Run a read-only query against the store (tables: prices, corporate_actions,
    ingest_status, symbols, features, context_features, labels; view: samples)."""
    import duckdb
    from rich.table import Table

    from stockml import store
    from stockml.errors import InputError
    from stockml.progress import console

    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise InputError("--out must end in .csv or .parquet")
    con = store.connect(db, read_only=True)
    try:
        try:
            frame = store.query_pl(con, query)
        except duckdb.Error as exc:
            raise InputError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    if out is not None:
        if out.suffix == ".csv":
            frame.write_csv(out)
        else:
            frame.write_parquet(out)
        console.print(f"{frame.height:,} rows written to {out}")
        return
    table = Table(show_header=True, header_style="bold")
    for name in frame.columns:
        table.add_column(name)
    for row in frame.head(limit).iter_rows():
        table.add_row(
            *("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row)
        )
    console.print(table)
    if frame.height > limit:
        console.print(f"… {frame.height - limit:,} more rows (use --out to get them all)")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
