"""Symbols that can never give a training sample, and why.

Training keeps a day only when all catalog features are set on it (a NULL is warm-up or an
undefined value, see features.nb_common). A symbol with no such day yields no sample and,
without this, nothing says so. The usual cause is volume 0 on every bar (a fund quoted
without trades): every volume-normalised feature is NULL on every day. `uncovered_symbols`
lists such symbols from the store with the features that are NULL on every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stockml import store

# One scan of `features`: per symbol, its days, its complete days and each feature's
# non-NULL count (DuckDB's COLUMNS expands to every feature column; in a WHERE clause the
# expanded conditions are joined with AND).
_COUNTS_SQL = """
WITH complete AS (
    SELECT symbol, count(*) AS complete FROM features
    WHERE COLUMNS(* EXCLUDE (symbol, date)) IS NOT NULL GROUP BY symbol
),
volume AS (
    SELECT symbol, coalesce(max(volume), 0) = 0 AS zero_volume FROM prices GROUP BY symbol
),
counts AS (
    SELECT symbol, count(*) AS days, count(COLUMNS(* EXCLUDE (symbol, date)))
    FROM features GROUP BY symbol
)
SELECT counts.*, coalesce(volume.zero_volume, false) AS zero_volume
FROM counts LEFT JOIN complete USING (symbol) LEFT JOIN volume USING (symbol)
WHERE complete.complete IS NULL
ORDER BY symbol
"""


@dataclass(frozen=True)
class Uncovered:
    """A symbol with no day on which every feature is set."""

    symbol: str
    days: int  # stored feature rows
    always_null: tuple[str, ...]  # features NULL on every one of those days
    zero_volume: bool  # volume 0 (or missing) on every stored bar

    def reason(self) -> str:
        """One line: the symbol, then why it has no complete feature row."""
        head = f"{self.symbol}: no complete feature row"
        if not self.always_null:
            return (
                f"{head} in {self.days} days: every feature is set on some day, "
                "never all on the same day"
            )
        names = ", ".join(self.always_null)
        count = len(self.always_null)
        if self.zero_volume:
            return f"{head}: {count} features NULL on every day (volume 0): {names}"
        return f"{head}: {count} features NULL on all {self.days} days: {names}"


def uncovered_symbols(con: Any) -> list[Uncovered]:
    """Every symbol in `features` without a complete row, in symbol order."""
    frame = store.query_pl(con, _COUNTS_SQL)
    features = [c for c in frame.columns if c not in ("symbol", "days", "zero_volume")]
    return [
        Uncovered(
            row["symbol"],
            row["days"],
            tuple(name for name in features if row[name] == 0),
            row["zero_volume"],
        )
        for row in frame.iter_rows(named=True)
    ]
