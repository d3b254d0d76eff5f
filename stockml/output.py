"""Results on stdout, in the format the reader wants; notes about them on stderr.

A command's result is a frame; `write_frame` writes it in one of FORMATS, as the DuckDB
CLI does (`-csv`, `-json`, `-markdown`, its box table on a terminal):

    table     aligned columns for a person (the default when stdout is a terminal). At a
              terminal only the leading columns that fit its width are drawn, whole, and
              stderr says how many were left out; piped, every column is drawn
    csv       a header line, then one line per row (the default when stdout is not a
              terminal: `stockml signals | wc -l` counts the header and the signals)
    json      an array of objects, one per row; dates as ISO text, NaN as null
    markdown  a GitHub table

Cells: NULL is `NULL` in a table and markdown, empty in csv, null in json; floats show 6
significant digits in a table and markdown, every digit in csv and json. Anything a
command says about its result (counts, the run it came from, rows left out) goes through
`note`, on stderr, so a pipe receives the rows alone.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stockml.errors import InputError
from stockml.progress import console as stderr_console

FORMATS = ("table", "csv", "json", "markdown")
FORMAT_HELP = (
    "Output: table, csv, json or markdown (default: table on a terminal, csv when stdout "
    "is a pipe or a file)."
)
# Between two columns of a table, and around it: rich's box with one space of padding.
_COLUMN_GAP = 3


def default_format(stream: TextIO | None = None) -> str:
    """`table` when `stream` (stdout) is a terminal, else `csv`."""
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "csv"


def check_format(fmt: str | None) -> str:
    """The format to write: `fmt` checked against FORMATS, or the default for stdout.
    Raises InputError for an unknown name."""
    if fmt is None:
        return default_format()
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def result_console(stream: TextIO | None = None) -> Console:
    """A rich console on stdout for results drawn as rich tables (train's summary): at a
    terminal, its width; elsewhere as wide as the table needs, never cut to 80 columns."""
    stream = stream or sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, width=1000, soft_wrap=True)


def note(text: str) -> None:
    """A line about the result, for the person (stderr), never mixed into the rows."""
    stderr_console.print(text, markup=False, highlight=False)


def cell_text(value: Any) -> str:
    """How a table or markdown cell shows `value`."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, pl.Series):  # a list cell, as polars hands it over
        return str(value.to_list())
    return str(value)


def write_frame(
    frame: pl.DataFrame,
    fmt: str,
    *,
    title: str | None = None,
    limit: int | None = None,
    stream: TextIO | None = None,
) -> None:
    """Write `frame` to `stream` (stdout) as `fmt`. `limit` caps the rows of a table (the
    rest are counted on stderr); csv, json and markdown get every row. `title` is drawn
    above a table, and is a note on stderr in the other formats. Nested and binary columns
    are shown as text except in json."""
    stream = stream or sys.stdout
    if title and fmt != "table":
        note(title)
    if fmt == "json":
        stream.write(_finite(frame).write_json() + "\n")
    elif fmt == "csv":
        stream.write(_flat(frame).write_csv())
    elif fmt == "markdown":
        stream.write(_markdown(frame))
    else:
        shown = frame if limit is None else frame.head(limit)
        _table(shown, title, stream)
        if frame.height > shown.height:
            note(
                f"… {frame.height - shown.height:,} more rows: --limit N shows more, "
                "--format csv|json|markdown or --out FILE gives them all"
            )
    stream.flush()


def _finite(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN as null: JSON has no NaN."""
    floats = [n for n, t in frame.schema.items() if t.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested and binary columns as text, for the formats that have only text cells."""
    nested = [n for n, t in frame.schema.items() if t.is_nested() or t == pl.Binary]
    if not nested:
        return frame
    return frame.with_columns(
        pl.col(n).map_elements(cell_text, return_dtype=pl.String) for n in nested
    )


def _markdown(frame: pl.DataFrame) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [row(frame.columns), row(["---"] * frame.width)]
    lines += [row([cell_text(v) for v in values]) for values in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def _table(frame: pl.DataFrame, title: str | None, stream: TextIO) -> None:
    cells = [[cell_text(v) for v in values] for values in frame.iter_rows()]
    widths = [max([len(name), *(len(r[i]) for r in cells)]) for i, name in enumerate(frame.columns)]
    shown = len(widths)
    if stream.isatty():
        out = Console(file=stream, highlight=False)
        used = 1
        for i, width in enumerate(widths):
            if i and used + width + _COLUMN_GAP > out.width:
                shown = i
                break
            used += width + _COLUMN_GAP
    else:  # nobody's screen to fit: as wide as the columns need
        needed = sum(w + _COLUMN_GAP for w in widths) + 1
        out = Console(file=stream, highlight=False, width=max(needed, 20))
    table = Table(title=title, header_style="bold")
    for name, width in zip(frame.columns[:shown], widths[:shown], strict=True):
        table.add_column(Text(name), no_wrap=True, min_width=width)
    for r in cells:
        table.add_row(*(Text(c) for c in r[:shown]))
    out.print(table)
    if shown < frame.width:
        left = frame.columns[shown:]
        more = ", …" if len(left) > 5 else ""
        note(
            f"… {len(left)} more columns not shown ({', '.join(left[:5])}{more}): a wider "
            "terminal, fewer columns in the SELECT, or --format csv|json|markdown shows them"
        )
