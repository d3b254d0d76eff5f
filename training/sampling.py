"""Which labelled stock-days a run trains on: all of them, or a date-stratified sample.

At market scale (5,000 symbols x 20 years, ~25 M labelled days) the samples do not fit in
memory as a float64 matrix (~36 GB), so a run may be capped at `max_samples` rows. The cap
is met SQL-side, before any feature column is read into Python:

- stratified by date: every trading day keeps the same share of its labelled rows
  (ceil(rows that day x fraction)), so the walk-forward split, the purge and the test
  windows see the same calendar as the full store, in date order;
- per day, the rows kept are those with the smallest hash of (symbol, date, seed): a
  different subset of symbols each day, no symbol favoured, and the same rows on every run
  over the same store (DuckDB's `hash` is stable within a DuckDB version).
"""

from __future__ import annotations

from typing import Any

SAMPLE_SEED = 7

# $symbols: the training universe (NULL: every stored symbol).
_ALL_SQL = """
SELECT * FROM samples
WHERE profile = $profile AND label IS NOT NULL
  AND ($symbols IS NULL OR list_contains($symbols, symbol))
ORDER BY date, symbol
"""

_COUNT_SQL = """
SELECT count(*) FROM labels
WHERE profile = $profile AND label IS NOT NULL
  AND ($symbols IS NULL OR list_contains($symbols, symbol))
"""

# Ranks come from `labels` alone (symbol, date): the feature columns are read only for the
# rows kept.
_SAMPLED_SQL = """
WITH ranked AS (
    SELECT symbol, date,
           row_number() OVER (PARTITION BY date ORDER BY hash(symbol, date, $seed), symbol)
               AS day_rank,
           count(*) OVER (PARTITION BY date) AS day_rows
    FROM labels
    WHERE profile = $profile AND label IS NOT NULL
      AND ($symbols IS NULL OR list_contains($symbols, symbol))
),
kept AS (
    SELECT symbol, date FROM ranked WHERE day_rank <= ceil(day_rows * $fraction)
)
SELECT s.* FROM samples s SEMI JOIN kept USING (symbol, date)
WHERE s.profile = $profile AND s.label IS NOT NULL
ORDER BY s.date, s.symbol
"""


def labelled_count(con: Any, profile: str, symbols: list[str] | None = None) -> int:
    """Labelled stock-days of `profile` in the store (of `symbols` only, when given)."""
    params = {"profile": profile, "symbols": symbols}
    return int(con.execute(_COUNT_SQL, params).fetchone()[0])


def read_samples(
    con: Any, profile: str, max_samples: int | None = None, symbols: list[str] | None = None
) -> Any:
    """The `samples` rows of `profile` with a label (of `symbols` only, when given), ordered
    by (date, symbol), as a polars DataFrame: all of them, or when there are more than
    `max_samples`, about that many (each day keeps ceil(its rows x max_samples / total), so
    a little more) sampled per day as the module docstring says. Raises ValueError for
    `max_samples` < 1."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be at least 1, not {max_samples}")
    params = {"profile": profile, "symbols": symbols}
    total = labelled_count(con, profile, symbols) if max_samples is not None else 0
    con.complete()
    if max_samples is None or total <= max_samples:
        return con.sql(_ALL_SQL, params=params).pl()
    fraction = max_samples / total
    return con.sql(_SAMPLED_SQL, params={**params, "fraction": fraction, "seed": SAMPLE_SEED}).pl()
