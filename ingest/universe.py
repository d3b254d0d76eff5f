"""Built-in universes and symbol normalisation.

`full` is 82 liquid US stocks covering all 11 GICS sectors, AAPL first; `quick` is 20 of
them (every sector still present). Both live in `universes.csv` beside this module,
with names and sectors, so the store can answer per-sector questions.

Symbols are normalised to Yahoo's spelling before any request: upper case, class
shares with a dash (BRK.B -> BRK-B). Anything else that is not a plausible ticker is
rejected up front, so a typo costs no request and gets a one-line error.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from stockml.errors import InputError

_UNIVERSES_CSV = Path(__file__).with_name("universes.csv")
# Yahoo tickers: letters, digits, a dash for share classes, a leading ^ for indices,
# '=' for currencies/futures, a dot-suffix for foreign exchanges (e.g. SAP.DE).
_TICKER = re.compile(r"^\^?[A-Z0-9][A-Z0-9\-=]{0,11}(\.[A-Z]{1,3})?$")
_CLASS_SHARE = re.compile(r"^([A-Z]{1,5})\.([A-Z])$")


@dataclass(frozen=True)
class Listing:
    symbol: str
    name: str
    sector: str


def _load() -> tuple[list[Listing], list[str]]:
    with _UNIVERSES_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    listings = [Listing(r["symbol"], r["name"], r["sector"]) for r in rows]
    quick = [r["symbol"] for r in rows if r["quick"] == "1"]
    return listings, quick


LISTINGS, _QUICK = _load()
UNIVERSES: dict[str, list[str]] = {"full": [x.symbol for x in LISTINGS], "quick": _QUICK}


def normalize_symbol(raw: str) -> str:
    """Yahoo's spelling of a ticker; raises InputError for anything malformed."""
    text = raw.strip().upper()
    match = _CLASS_SHARE.match(text)
    if match:
        text = f"{match.group(1)}-{match.group(2)}"
    if not _TICKER.match(text):
        raise InputError(f"malformed symbol {raw!r}: expected a ticker such as AAPL or BRK-B")
    return text


def parse_symbols(text: str) -> list[str]:
    """`--symbols A,B,C`: normalised, duplicates removed, order kept."""
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts:
        raise InputError("--symbols is empty")
    return list(dict.fromkeys(normalize_symbol(p) for p in parts))


def resolve_universe(name_or_file: str) -> list[str]:
    """A built-in universe name, or a file with one symbol per line (or a CSV with a
    `symbol` column); `#` starts a comment."""
    if name_or_file in UNIVERSES:
        return list(UNIVERSES[name_or_file])
    path = Path(name_or_file)
    if not path.is_file():
        known = ", ".join(sorted(UNIVERSES))
        raise InputError(f"unknown universe {name_or_file!r}: use one of {known} or a file path")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read universe file {path}: {exc}") from exc
    cells: list[str] = []
    header_skipped = False
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        first = line.split(",")[0].strip()
        if not header_skipped and first.lower() == "symbol":
            header_skipped = True
            continue
        cells.append(first)
    if not cells:
        raise InputError(f"universe file {path} lists no symbols")
    return list(dict.fromkeys(normalize_symbol(c) for c in cells))


def listing_rows() -> list[tuple[str, str, str]]:
    """(symbol, name, sector) of every built-in symbol, for the store's `symbols` table."""
    return [(x.symbol, x.name, x.sector) for x in LISTINGS]
