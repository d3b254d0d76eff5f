"""Built-in universes and symbol normalisation.

`full` is 82 liquid US stocks covering all 11 GICS sectors, AAPL first; `quick` is 20 of
them (every sector still present). Both live in `universes.csv` beside this module,
with names and sectors, so the store can answer per-sector questions.

Symbols are normalised to Yahoo's spelling before any request: upper case, and a dotted
suffix read as either an exchange or a US share class:
- a suffix in `EXCHANGE_SUFFIXES` (Yahoo's exchange codes: BARC.L, SAP.DE, 7203.T, ABX.V)
  is an exchange and is kept as typed;
- any other single letter after a US-style ticker is a share class and takes Yahoo's dash
  (BRK.B -> BRK-B, BF.B -> BF-B).
Four exchange codes are single letters (.F Frankfurt, .L London, .T Tokyo, .V TSX Venture),
so a US class share with one of those letters (rare) must be typed with the dash: XYZ-V.
Every character Yahoo uses in symbols is accepted (`&` as in M&M.NS, `^` for indices, `=`
for currencies and futures, `-`, `.`) and percent-encoded in the request path. Anything else
that is not a plausible ticker is rejected up front, so a typo costs no request and gets a
one-line error (in a universe file, naming its line).

A universe file lists one symbol per line, or is a CSV/TSV whose header names a `symbol`
column and optionally `name` and `sector`; without a header, a later column holding one of
the 11 GICS sector names is read as the sector (`../shared/data/skill_universe82.tsv`).

The exchange suffix also gives the listing's time zone (`exchange_timezone`), which the
resume plan uses to ask for the right window before the first answer arrives; Yahoo's
`meta.exchangeTimezoneName` in that answer stays the authority for dating the bars.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from stockml.defaults import EXCHANGE_TZ_NAME
from stockml.errors import InputError

_UNIVERSES_CSV = Path(__file__).with_name("universes.csv")
# Yahoo tickers: letters, digits, a dash for share classes, a leading ^ for indices,
# '=' for currencies/futures, a dot-suffix for foreign exchanges (e.g. SAP.DE).
_TICKER = re.compile(r"^\^?[A-Z0-9][A-Z0-9\-=&]{0,11}(\.[A-Z]{1,3})?$")
_CLASS_SHARE = re.compile(r"^([A-Z]{1,5})\.([A-Z])$")

# Yahoo's exchange suffixes -> (exchange, IANA time zone of its trading day). Kept as typed.
EXCHANGE_SUFFIXES: dict[str, tuple[str, str]] = {
    "AS": ("Euronext Amsterdam", "Europe/Amsterdam"),
    "AT": ("Athens", "Europe/Athens"),
    "AX": ("ASX Australia", "Australia/Sydney"),
    "BA": ("Buenos Aires", "America/Argentina/Buenos_Aires"),
    "BD": ("Budapest", "Europe/Budapest"),
    "BE": ("Berlin", "Europe/Berlin"),
    "BK": ("Thailand", "Asia/Bangkok"),
    "BO": ("BSE India", "Asia/Kolkata"),
    "BR": ("Euronext Brussels", "Europe/Brussels"),
    "CN": ("Canadian Securities Exchange", "America/Toronto"),
    "CO": ("Nasdaq Copenhagen", "Europe/Copenhagen"),
    "DE": ("XETRA", "Europe/Berlin"),
    "DU": ("Dusseldorf", "Europe/Berlin"),
    "F": ("Frankfurt", "Europe/Berlin"),
    "HA": ("Hanover", "Europe/Berlin"),
    "HE": ("Nasdaq Helsinki", "Europe/Helsinki"),
    "HK": ("Hong Kong", "Asia/Hong_Kong"),
    "HM": ("Hamburg", "Europe/Berlin"),
    "IC": ("Nasdaq Iceland", "Atlantic/Reykjavik"),
    "IL": ("London IOB", "Europe/London"),
    "IR": ("Euronext Dublin", "Europe/Dublin"),
    "IS": ("Borsa Istanbul", "Europe/Istanbul"),
    "JK": ("Indonesia", "Asia/Jakarta"),
    "JO": ("Johannesburg", "Africa/Johannesburg"),
    "KL": ("Bursa Malaysia", "Asia/Kuala_Lumpur"),
    "KQ": ("KOSDAQ", "Asia/Seoul"),
    "KS": ("Korea Exchange", "Asia/Seoul"),
    "L": ("London", "Europe/London"),
    "LS": ("Euronext Lisbon", "Europe/Lisbon"),
    "MC": ("Madrid", "Europe/Madrid"),
    "MI": ("Borsa Italiana", "Europe/Rome"),
    "MU": ("Munich", "Europe/Berlin"),
    "MX": ("Mexico", "America/Mexico_City"),
    "NE": ("Cboe Canada", "America/Toronto"),
    "NS": ("NSE India", "Asia/Kolkata"),
    "NZ": ("NZX", "Pacific/Auckland"),
    "OL": ("Oslo", "Europe/Oslo"),
    "PA": ("Euronext Paris", "Europe/Paris"),
    "PR": ("Prague", "Europe/Prague"),
    "QA": ("Qatar", "Asia/Qatar"),
    "RG": ("Nasdaq Riga", "Europe/Riga"),
    "SA": ("B3 Sao Paulo", "America/Sao_Paulo"),
    "SG": ("Stuttgart", "Europe/Berlin"),
    "SI": ("Singapore", "Asia/Singapore"),
    "SN": ("Santiago", "America/Santiago"),
    "SR": ("Saudi Exchange", "Asia/Riyadh"),
    "SS": ("Shanghai", "Asia/Shanghai"),
    "ST": ("Nasdaq Stockholm", "Europe/Stockholm"),
    "SW": ("SIX Swiss", "Europe/Zurich"),
    "SZ": ("Shenzhen", "Asia/Shanghai"),
    "T": ("Tokyo", "Asia/Tokyo"),
    "TA": ("Tel Aviv", "Asia/Jerusalem"),
    "TL": ("Nasdaq Tallinn", "Europe/Tallinn"),
    "TO": ("Toronto", "America/Toronto"),
    "TW": ("Taiwan", "Asia/Taipei"),
    "TWO": ("Taipei Exchange", "Asia/Taipei"),
    "V": ("TSX Venture", "America/Toronto"),
    "VI": ("Vienna", "Europe/Vienna"),
    "VS": ("Nasdaq Vilnius", "Europe/Vilnius"),
    "WA": ("Warsaw", "Europe/Warsaw"),
}


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
# The 11 GICS sectors, by lower-case name (a file's "health care" is read as "Health Care").
_GICS = {x.sector.lower(): x.sector for x in LISTINGS}
UNIVERSES: dict[str, list[str]] = {"full": [x.symbol for x in LISTINGS], "quick": _QUICK}


def normalize_symbol(raw: str) -> str:
    """Yahoo's spelling of a ticker; raises InputError for anything malformed."""
    text = raw.strip().upper()
    match = _CLASS_SHARE.match(text)
    if match and match.group(2) not in EXCHANGE_SUFFIXES:
        text = f"{match.group(1)}-{match.group(2)}"
    if not _TICKER.match(text):
        raise InputError(f"malformed symbol {raw!r}: expected a ticker such as AAPL or BRK-B")
    return text


def exchange_timezone(symbol: str) -> str:
    """The time zone of a normalised symbol's trading day, from its exchange suffix
    (New York for a symbol without one, or with a suffix missing from the table)."""
    _, dot, suffix = symbol.rpartition(".")
    listed = EXCHANGE_SUFFIXES.get(suffix) if dot else None
    return listed[1] if listed else EXCHANGE_TZ_NAME


def parse_symbols(text: str) -> list[str]:
    """`--symbols A,B,C`: normalised, duplicates removed, order kept."""
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts:
        raise InputError("--symbols is empty")
    return list(dict.fromkeys(normalize_symbol(p) for p in parts))


@dataclass(frozen=True)
class Universe:
    """The symbols a run asks for, in order, and the names and sectors their source gave
    (a universe file's columns; empty for `--symbols`)."""

    symbols: list[str]
    listings: dict[str, Listing]


def resolve_universe(name_or_file: str) -> list[str]:
    """The symbols of a built-in universe name or of a universe file (`read_universe`)."""
    return read_universe(name_or_file).symbols


def read_universe(name_or_file: str) -> Universe:
    """A built-in universe name, or a universe file (module doc); `#` starts a comment.
    Raises InputError naming the file (and the line, for a malformed symbol)."""
    if name_or_file in UNIVERSES:
        symbols = list(UNIVERSES[name_or_file])
        return Universe(symbols, {x.symbol: x for x in LISTINGS if x.symbol in set(symbols)})
    path = Path(name_or_file)
    if not path.is_file():
        known = ", ".join(sorted(UNIVERSES))
        raise InputError(f"unknown universe {name_or_file!r}: use one of {known} or a file path")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read universe file {path}: {exc}") from exc
    symbols: list[str] = []
    listings: dict[str, Listing] = {}
    header: list[str] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        row = next(csv.reader([line], delimiter="\t" if "\t" in line else ","))
        cells = [c.strip() for c in row] or [""]
        if header is None and not symbols and "symbol" in (c.lower() for c in cells):
            header = [c.lower() for c in cells]
            continue
        fields = dict(zip(header, cells, strict=False)) if header else {"symbol": cells[0]}
        if header is None:
            fields["sector"] = next((c for c in cells[1:] if c.lower() in _GICS), "")
        try:
            symbol = normalize_symbol(fields.get("symbol", ""))
        except InputError as exc:
            raise InputError(f"universe file {path} line {number}: {exc}") from None
        symbols.append(symbol)
        sector = _GICS.get(fields.get("sector", "").lower(), fields.get("sector", ""))
        if sector or fields.get("name"):
            listings[symbol] = Listing(symbol, fields.get("name", ""), sector)
    if not symbols:
        raise InputError(f"universe file {path} lists no symbols")
    return Universe(list(dict.fromkeys(symbols)), listings)


def listing_rows() -> list[tuple[str, str, str]]:
    """(symbol, name, sector) of every built-in symbol, for the store's `symbols` table."""
    return [(x.symbol, x.name, x.sector) for x in LISTINGS]
