"""The refresh loop every derived table shares: features and each profile's labels.

A derived table holds, per symbol, values computed from that symbol's stored prices, plus a
status row saying which prices fingerprint and which version of the computation (catalog
hash, profile parameters) they came from. `refresh_derived` brings such a table in step
with `prices`:

    plan     symbols whose fingerprint or version differ are stale, symbols no longer in
             `prices` are gone; stale symbols are grouped into batches of about `batch_rows`
             price rows (`plan_refresh`, a plain value the caller may inspect first);
    delete   rows of gone symbols are dropped;
    compute  a batch's prices -> its rows, on a worker thread, one batch ahead: Numba and
             polars release the GIL, so batch i+1 is computed while batch i is written;
    replace  rows and status of the batch swapped in one transaction (the caller's writer),
             so an interrupted refresh leaves every symbol either old or new, never mixed;
    progress one bar over the price rows, and a summary dict for the caller to log.

DuckDB is touched from the calling thread only. The stage-specific parts (what to compute,
how to write it) are the caller's functions, so this module knows no stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from stockml import store
from stockml.progress import progress_bar


@dataclass(frozen=True)
class RefreshPlan:
    """What a refresh will do: `fingerprints` of every stored symbol, the `stale` ones (to
    recompute, in `batches`), the `gone` ones (to delete) and `sizes` (price rows each);
    `started` is when planning began, so the summary's seconds cover the whole refresh."""

    fingerprints: dict[str, str]
    stale: list[str]
    gone: list[str]
    sizes: dict[str, int]
    batches: list[list[str]]
    started: float = field(default_factory=time.perf_counter)

    @property
    def largest_batch(self) -> int:
        """Price rows of the biggest batch (0 when there is nothing to do)."""
        return max((sum(self.sizes[s] for s in b) for b in self.batches), default=0)


def plan_refresh(
    con: Any, done: Mapping[str, tuple[str, str]], version: str, batch_rows: int
) -> RefreshPlan:
    """Compare `done` (symbol -> (prices fingerprint, version) stored with the derived rows)
    with the prices in the store now."""
    started = time.perf_counter()
    current = store.prices_fingerprints(con)
    stale = sorted(s for s, fingerprint in current.items() if done.get(s) != (fingerprint, version))
    gone = sorted(set(done) - set(current))
    sizes = store.row_counts(con, stale)
    batches = store.symbol_batches(sizes, batch_rows)
    return RefreshPlan(current, stale, gone, sizes, batches, started)


def refresh_derived(
    con: Any,
    plan: RefreshPlan,
    *,
    title: str,
    compute: Callable[[pl.DataFrame], pl.DataFrame],
    replace: Callable[[Sequence[str], pl.DataFrame], None],
    delete: Callable[[Sequence[str]], None],
    progress: bool = True,
    first_status: str | None = None,
) -> dict[str, Any]:
    """Carry out `plan`: `delete(gone)`, then per batch `replace(batch, compute(prices))`.

    `compute` must return a frame that no longer needs its input (it runs while the next
    batch's prices are read). `first_status` is shown on the bar before the first batch
    (e.g. that the kernels are compiling). Returns symbols, rows, chunks (batches),
    removed, up_to_date and seconds."""
    if plan.gone:
        delete(plan.gone)
    rows_done = 0
    batches = plan.batches
    with progress_bar(title, sum(plan.sizes.values()), progress) as bar:
        if batches and first_status:
            bar.update(status=first_status)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(compute, store.read_prices(con, batches[0])) if batches else None
            for i, batch in enumerate(batches):
                frame = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(compute, store.read_prices(con, batches[i + 1]))
                replace(batch, frame)
                rows_done += frame.height
                bar.advance(frame.height, status=f"{batch[-1]} · {len(batch)} symbols")
    return {
        "symbols": len(plan.stale),
        "rows": rows_done,
        "chunks": len(batches),
        "removed": len(plan.gone),
        "up_to_date": len(plan.fingerprints) - len(plan.stale),
        "seconds": round(time.perf_counter() - plan.started, 2),
    }
