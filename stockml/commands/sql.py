"""`stockml sql`: one read-only SQL statement over the store; its rows on stdout."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import typer

from stockml.output import FORMAT_HELP
from stockml.store import DEFAULT_DB, schema

# Every table and view a store can hold, read from the schema module's DDL (this module
# writes none): the tables of its DDL blocks, the two built from the catalogs, its views.
_SCHEMA_TEXT = inspect.getsource(schema)
TABLES = [
    *dict.fromkeys(re.findall(r"IF NOT EXISTS (\w+) \(", _SCHEMA_TEXT)),
    "features",
    "context_features",
]
VIEWS = list(dict.fromkeys(re.findall(r"VIEW (\w+) AS", _SCHEMA_TEXT)))
# DuckDB types polars cannot take from Arrow (it fails, or panics): shown as DuckDB's text.
_AS_TEXT = re.compile(r"INTERVAL|UNION|BIGNUM|VARINT|\bBIT\b")
_NESTED_AS_TEXT = re.compile(_AS_TEXT.pattern + r"|\[|STRUCT|MAP\(|BLOB")
_OPTION = re.compile(r"--?[A-Za-z][\w-]*(=.*)?")
EXAMPLE = (
    'Example: stockml sql "SELECT status, count(*) AS symbols FROM ingest_status '
    'GROUP BY status" --format markdown'
)
HELP = (
    "Run one read-only SQL statement against the store and write its rows to stdout (see "
    "--format). While another stockml process writes the store, the statement reads the "
    "state from before that write began, and says so on stderr.\n\n"
    f"Tables: {', '.join(TABLES)}; views: {', '.join(VIEWS)} (samples: features, context "
    "and labels joined). "
    "The README describes every column."
)


def sql(
    query: str = typer.Argument(
        ..., help='One SQL statement, e.g. "SELECT * FROM ingest_status".', show_default=False
    ),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store, opened read-only."),
    fmt: str = typer.Option(None, "--format", help=FORMAT_HELP, show_default=False),
    out: Path = typer.Option(
        None, "--out", help="Write every row to a .csv, .json or .parquet file instead."
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, help="Rows drawn in a table (csv, json, markdown get every row)."
    ),
) -> None:
    from stockml import store
    from stockml.errors import InputError
    from stockml.output import check_format, note, write_frame

    fmt = check_format(fmt)
    if out is not None and out.suffix not in (".csv", ".json", ".parquet"):
        raise InputError("--out must end in .csv, .json or .parquet")
    if not query.strip():
        raise InputError('the SQL text is empty: give one statement, e.g. "SELECT 1"')
    if _OPTION.fullmatch(query):  # a mistyped flag, let through to allow "-- comment\n..."
        raise InputError(f"no such option: {query} (see stockml sql --help)")
    reading = store.open_for_reading(db)
    try:
        if not reading.live:
            note(reading.moment(db))
        frame = run_query(reading.con, query, nested_as_text=fmt != "json" and out is None)
    finally:
        reading.close()
    if out is None:
        write_frame(frame, fmt, limit=limit)
        return
    if out.suffix == ".csv":
        frame.write_csv(out)
    elif out.suffix == ".json":
        frame.write_json(out)
    else:
        frame.write_parquet(out)
    note(f"{frame.height:,} rows written to {out}")


def run_query(con, query: str, nested_as_text: bool = False):
    """The statement's rows as a polars frame; lists, structs and maps as DuckDB writes
    them ('[1, 2]') with `nested_as_text`. Raises InputError for an SQL error or a text
    without a statement (only comments)."""
    import duckdb

    from stockml.errors import InputError

    con.complete()
    try:
        relation = con.sql(query)
        if relation is None:
            raise InputError("the SQL text has no statement, only comments or blanks")
        text = _AS_TEXT if not nested_as_text else _NESTED_AS_TEXT
        odd = [i for i, t in enumerate(relation.types) if text.search(str(t))]
        if odd:
            names = ['"' + n.replace('"', '""') + '"' for n in relation.columns]
            relation = relation.project(
                ", ".join(
                    f"CAST({n} AS VARCHAR) AS {n}" if i in odd else n for i, n in enumerate(names)
                )
            )
        return relation.pl()
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {str(exc).splitlines()[0]}") from None


def register(app: typer.Typer) -> None:
    # A query may start with an SQL comment ("-- ..."), which Click would take for a flag.
    settings = {"ignore_unknown_options": True}
    app.command("sql", help=HELP, epilog=EXAMPLE, context_settings=settings)(sql)
