"""The GICS sector of every symbol a run stores, for the sector context and SQL joins.

A symbol's name and sector come from the first of these that knows it:
    1. `--sectors FILE`            a CSV/TSV with `symbol` and `sector` columns (any universe
                                   file with a sector column will do);
    2. the universe file's column  `--universe FILE` with a `sector` column;
    3. the built-in universes      `universes.csv` (the 82 of `full`);
    4. the shipped constituents    `constituents.csv` beside this module: the S&P 500 as
                                   published by the public-domain (ODC-PDDL) dataset
                                   datasets/s-and-p-500-companies (503 symbols, 2026), plus
                                   69 members of 2021 that have since left the index, from
                                   the team's shared 2021 constituents list: 572 symbols.
A symbol none of them knows keeps no sector: the sector context groups it as "Unknown"
(features.context), and the run says which symbols those are, once, in its summary and log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.universe import LISTINGS, Listing, read_universe
from stockml.errors import InputError

_CONSTITUENTS = Path(__file__).with_name("constituents.csv")


def shipped_listings() -> dict[str, Listing]:
    """The shipped constituents list, then the built-in universes over it."""
    shipped = read_universe(str(_CONSTITUENTS)).listings
    return shipped | {x.symbol: x for x in LISTINGS}


def read_sector_file(path: Path) -> dict[str, Listing]:
    """`--sectors FILE`: the listings of a file with symbol and sector columns; InputError
    when it gives no sector at all (a file of bare symbols was probably meant elsewhere)."""
    listings = {s: x for s, x in read_universe(str(path)).listings.items() if x.sector}
    if not listings:
        raise InputError(f"--sectors {path} gives no sector: it needs a 'sector' column")
    return listings


@dataclass(frozen=True)
class SectorPlan:
    """(symbol, name, sector) rows to upsert into `symbols`, and the symbols of the run with
    no sector from any source (before the store is asked: see `without_sector`)."""

    rows: list[tuple[str, str, str]]
    unknown: list[str]


def plan_sectors(
    symbols: Sequence[str], *sources: dict[str, Listing], builtin: bool = True
) -> SectorPlan:
    """Look each of `symbols` up in `sources` (first wins), then the shipped lists. Rows are
    the run's symbols that got a sector, plus the built-in universes (as before)."""
    chain = [*sources, shipped_listings()] if builtin else list(sources)
    rows: dict[str, tuple[str, str, str]] = {}
    if builtin:
        rows = {x.symbol: (x.symbol, x.name, x.sector) for x in LISTINGS}
    unknown = []
    for symbol in symbols:
        found = next((src[symbol] for src in chain if symbol in src and src[symbol].sector), None)
        if found is None:
            unknown.append(symbol)
            continue
        name = found.name or next((src[symbol].name for src in chain if symbol in src), "")
        rows[symbol] = (symbol, name, found.sector)
    return SectorPlan(list(rows.values()), unknown)


def describe_unknown(symbols: Iterable[str]) -> str | None:
    """The one line naming the symbols without a sector (None when there are none)."""
    missing = sorted(symbols)
    if not missing:
        return None
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    shown = ", ".join(missing[:10]) + more
    return (
        f"no GICS sector for {len(missing)} symbols ({shown}): the sector context groups them "
        "as 'Unknown'; give one with a universe file's sector column or --sectors FILE"
    )
