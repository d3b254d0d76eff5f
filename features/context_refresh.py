"""The store side of context features: read the universe, compute, swap `context_features`.

Context columns of one stock depend on every stock (an index, breadth, sector medians,
ranks), so the table is recomputed whole whenever its inputs change: any symbol's prices
fingerprint, the feature catalog, the context catalog, or the symbols' sectors. The digest
of those inputs is stored beside the table (`settings.context_version`); an unchanged store
costs one query. The computation itself is `features.context.context_frame` (pure).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import polars as pl
import structlog

from features.catalog import CATALOG_VERSION
from features.context import CONTEXT_CATALOG, CONTEXT_COLUMNS, MARKET_SYMBOLS, RANKED
from features.context import context_frame as compute_context
from stockml import store
from stockml.progress import progress_bar


def context_version(con: Any) -> str:
    """Digest of everything the context table is computed from."""
    sectors = con.execute("SELECT symbol, sector FROM symbols ORDER BY symbol").fetchall()
    digest = hashlib.sha256()
    digest.update(json.dumps(CONTEXT_CATALOG, sort_keys=True).encode())
    digest.update(CATALOG_VERSION.encode())
    digest.update(json.dumps(sorted(store.prices_fingerprints(con).items())).encode())
    digest.update(json.dumps(sectors, default=str).encode())
    return digest.hexdigest()[:16]


def read_universe(con: Any) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(bars, market) as `context_frame` takes them: every stored symbol's adjusted close,
    sector and ranked catalog features; the first stored market symbol's close, if any."""
    ranked = ", ".join(f"f.{name}" for name in RANKED)
    bars = store.query_pl(
        con,
        f"SELECT p.symbol, p.date, p.adjclose AS close, s.sector, {ranked} "
        "FROM prices p LEFT JOIN symbols s USING (symbol) "
        "LEFT JOIN features f USING (symbol, date) ORDER BY p.symbol, p.date",
    )
    for symbol in MARKET_SYMBOLS:
        market = store.query_pl(
            con,
            "SELECT date, adjclose AS close FROM prices WHERE symbol = ? ORDER BY date",
            [symbol],
        )
        if market.height:
            return bars, market
    return bars, None


def refresh_context(con: Any, progress: bool = True) -> dict[str, Any]:
    """Bring `context_features` in step with the store (needs `features` up to date first).
    Returns rows, seconds and whether it was up_to_date."""
    started = time.perf_counter()
    store.ensure_context_table(con, CONTEXT_COLUMNS)
    version = context_version(con)
    if store.context_state(con) == version:
        return {"rows": 0, "up_to_date": True, "seconds": 0.0}
    with progress_bar("context", 3, progress) as bar:
        bar.update(status="reading the universe")
        bars, market = read_universe(con)
        bar.advance(1, status=f"computing {len(CONTEXT_COLUMNS)} columns")
        frame = compute_context(bars, market)
        bar.advance(1, status=f"writing {frame.height:,} rows")
        store.replace_context(con, frame, version)
        bar.advance(1, status="done")
    summary = {
        "rows": frame.height,
        "up_to_date": False,
        "market": "equal-weighted universe" if market is None else "stored market symbol",
        "seconds": round(time.perf_counter() - started, 2),
    }
    structlog.get_logger("features").info("context_refreshed", **summary)
    return summary
