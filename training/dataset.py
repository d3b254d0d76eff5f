"""The dataset of a run: labelled stock-days read from the store, as arrays.

Every labelled day carrying all 179 catalog features (with the 23 context columns when the
recipe reads them), ordered by (date, symbol), becomes one row of `Samples`. Rows still
inside some feature's warm-up (the history fetched before --start) are not samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from stockml.errors import InputError, NothingToDoError


@dataclass
class Samples:
    """Labelled stock-days, ordered by (date, symbol): x (n, n_features) float32 features
    in `columns` order, y (n,) labels in {-1, 0, +1}, dates (n,) datetime64[D], symbols
    (n,) str, and what evaluation in trade terms needs: exit_return (n,) the stock's return
    from entry close to exit (a fraction), exit_offset (n,) trading days to exit.
    `without_samples`: why each symbol that gave none gave none."""

    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    symbols: np.ndarray
    columns: list[str]
    exit_return: np.ndarray
    exit_offset: np.ndarray
    without_samples: list[str] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        return self.x[:, self.columns.index(name)]

    def fingerprint(self) -> str:
        """16 hex digits naming these samples: their labels, every 2000th row of the
        features (NaN as 0) and the columns, hashed with SHA-256."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.y).tobytes())
        digest.update(np.nan_to_num(self.x[:: max(1, len(self.x) // 2000)]).tobytes())
        digest.update(",".join(self.columns).encode())
        return digest.hexdigest()[:16]

    def label_lives(self, day_index: np.ndarray) -> np.ndarray:
        """(n, 4) int64: each row's symbol code, trading-day index (`day_index`, into the
        sorted distinct days), exit offset and label: what `training.weights` needs to
        weight any subset of rows by label uniqueness (within each class)."""
        codes = np.unique(self.symbols, return_inverse=True)[1]
        return np.column_stack([codes, day_index, self.exit_offset, self.y]).astype(np.int64)


def load_samples(
    con: Any,
    profile: str,
    context: bool = True,
    max_samples: int | None = None,
    symbols: list[str] | None = None,
) -> Samples:
    """Every labelled day of `profile` carrying all catalog features, with the context
    columns when `context` and the store has them (NULL context values, inside a window's
    warm-up, stay NaN: every model imputes or handles them); over `max_samples` labelled
    days, a date-stratified sample drawn in SQL (training/sampling.py); of `symbols` only,
    when given.

    Symbols that give none are logged and, when no sample is left, named in the
    NothingToDoError; a +-inf feature (from a store computed before features were guarded)
    is an InputError naming the symbol, date and feature."""
    from features.catalog import COLUMNS
    from features.context import CONTEXT_COLUMNS
    from features.coverage import uncovered_symbols
    from training.sampling import read_samples

    frame = read_samples(con, profile, max_samples, symbols)
    labelled = frame.height
    frame = frame.drop_nulls(COLUMNS)
    uncovered = uncovered_symbols(con) if labelled else []
    log = structlog.get_logger("training")
    for item in uncovered:
        log.warning(
            "symbol_without_samples",
            symbol=item.symbol,
            zero_volume=item.zero_volume,
            always_null=list(item.always_null),
        )
    if frame.is_empty():
        if uncovered:
            raise NothingToDoError(
                f"no labelled samples with every feature for profile {profile!r}: "
                + "; ".join(item.reason() for item in uncovered)
            )
        raise NothingToDoError(
            f"no labelled samples for profile {profile!r}: run `stockml ingest` first "
            "(training needs at least a few months of prices)"
        )
    columns = list(COLUMNS)
    if context and all(c in frame.columns for c in CONTEXT_COLUMNS):
        columns += CONTEXT_COLUMNS
    # float32: the store keeps features as REAL, so this is every stored digit, in half
    # the memory of float64 (1.5 M rows x 202 columns: 1.2 GB, once in Ray's object store).
    x = frame.select(columns).to_numpy().astype(np.float32)
    infinite = np.isinf(x)
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise InputError(
            f"feature {columns[col]} is {x[row, col]} for {frame['symbol'][int(row)]} on "
            f"{frame['date'][int(row)]} ({int(infinite.sum())} infinite values in all): "
            "recompute the features with `stockml features` (this version stores NULL there)"
        )
    return Samples(
        x=x,
        y=frame["label"].to_numpy().astype(np.int64),
        dates=frame["date"].to_numpy(),
        symbols=frame["symbol"].to_numpy(),
        columns=columns,
        exit_return=frame["exit_return"].to_numpy().astype(np.float64),
        exit_offset=frame["exit_offset"].to_numpy().astype(np.int64),
        without_samples=[item.reason() for item in uncovered],
    )
