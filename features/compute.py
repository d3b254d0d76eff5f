"""prices -> adjusted arrays -> kernels -> the `features` table. The I/O side of features/.

`compute_features` is pure (a DataFrame in, a DataFrame out); `refresh_features` keeps
the store's `features` table in step with `prices`, recomputing only symbols whose
prices fingerprint changed (a re-adjusted history changes every value, and features with
an unstable period depend on the first stored bar, so a changed symbol is recomputed
whole, never appended to).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import structlog

from features.cache import kernels_cached
from features.catalog import CATALOG_VERSION, COLUMNS, recipe_arrays
from stockml import store
from stockml.memory import MemoryBudget
from stockml.refresh import plan_refresh, refresh_derived

# Bytes one price row costs while its chunk is in flight; symbols per kernel call and write
# follow from it and the memory limit (stockml.memory). The float64 buffer (179 x 8), the
# float32 rows being written (179 x 4, NULL masks) and the next chunk's float32 copies being
# made, the prices frames and DuckDB's insert copy: ~4.6 kB, measured 5,000 with slack.
FEATURE_ROW_BYTES = 5_000


def adjust_bars(prices: pl.DataFrame) -> pl.DataFrame:
    """Split- and dividend-adjusted bars: open/high/low scaled by adjclose/close of the
    same day, close = adjclose, volume as stored."""
    factor = pl.col("adjclose") / pl.col("close")
    return prices.select(
        "symbol",
        "date",
        (pl.col("open") * factor).alias("open"),
        (pl.col("high") * factor).alias("high"),
        (pl.col("low") * factor).alias("low"),
        pl.col("adjclose").alias("close"),
        pl.col("volume").cast(pl.Float64).fill_null(0.0).alias("volume"),
    )


def offsets_of(symbols: pl.Series) -> np.ndarray:
    """Row offsets of each symbol's block in a frame sorted by symbol."""
    sizes = symbols.rle().struct.field("len").to_numpy()
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def compute_matrix(adjusted: pl.DataFrame, out: np.ndarray | None = None) -> np.ndarray:
    """All catalog features for a frame sorted by (symbol, date): float64 [features, rows],
    into `out` when given (a caller computing many batches can reuse one buffer)."""
    from features.kernels import compute_all_nb

    kinds, params = recipe_arrays()
    arrays = [
        np.ascontiguousarray(adjusted[c].to_numpy(), dtype=np.float64)
        for c in ("open", "high", "low", "close", "volume")
    ]
    if out is None:
        out = np.empty((len(kinds), adjusted.height), dtype=np.float64)
    elif out.shape != (len(kinds), adjusted.height) or out.dtype != np.float64:
        raise ValueError(f"out must be float64 {(len(kinds), adjusted.height)}, not {out.shape}")
    compute_all_nb(*arrays, offsets_of(adjusted["symbol"]), kinds, params, out)
    return out


def compute_features(prices: pl.DataFrame, buffer: np.ndarray | None = None) -> pl.DataFrame:
    """symbol, date, then the 179 catalog columns (NaN during warm-up); no I/O. With a flat
    float64 `buffer` (at least 179 x rows), the matrix is computed into it and the frame's
    columns view it: valid until the buffer is reused."""
    prices = prices.sort("symbol", "date")
    adjusted = adjust_bars(prices)
    out = None
    if buffer is not None:
        out = buffer[: len(COLUMNS) * prices.height].reshape(len(COLUMNS), prices.height)
    matrix = compute_matrix(adjusted, out)
    columns = {name: matrix[j] for j, name in enumerate(COLUMNS)}
    return pl.DataFrame({"symbol": prices["symbol"], "date": prices["date"], **columns})


def refresh_features(
    con: Any, progress: bool = True, memory_limit: int | str | None = None
) -> dict[str, Any]:
    """Bring `features` up to date with `prices`, in symbol chunks sized to `memory_limit`
    (bytes or `6G`; None: a quarter of RAM, see stockml.memory); returns a small summary."""
    store.ensure_features_table(con, COLUMNS)
    budget = MemoryBudget.of(memory_limit)
    budget.bound_duckdb(con)
    rows = budget.chunk_rows(FEATURE_ROW_BYTES)
    plan = plan_refresh(con, store.features_state(con), CATALOG_VERSION, rows)
    # One output buffer for every batch: a fresh 0.4 GB array per batch costs more in page
    # faults (the OS zeroing new memory) than the kernels take to fill it. Each batch is
    # stored as float32 copies, so the buffer is free again when `compute` returns.
    buffer = np.empty(len(COLUMNS) * plan.largest_batch)
    compiling = "compiling the kernels (bootstrap.sh does it once per checkout): ~50 s of CPU"
    summary = refresh_derived(
        con,
        plan,
        title="features",
        compute=lambda prices: store.feature_rows(compute_features(prices, buffer)),
        replace=lambda batch, frame: store.replace_features(
            con, batch, frame, {s: plan.fingerprints[s] for s in batch}, CATALOG_VERSION
        ),
        delete=lambda gone: store.delete_features(con, gone),
        progress=progress,
        first_status=None if kernels_cached() else compiling,
    )
    budget.release_duckdb(con)
    structlog.get_logger("features").info("features_refreshed", **summary)
    return summary
