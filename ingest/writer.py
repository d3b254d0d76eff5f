"""The batched writer: one thread owns the DuckDB connection; outcomes commit together.

Every DuckDB call of an ingest run goes through this writer's single thread (`read` for
queries, `submit` for a symbol's outcome), so the event loop never blocks on the store and
the connection is never shared between threads. Outcomes waiting when the writer frees up
are committed in one transaction (at most MAX_BATCH): each symbol is still wholly in or
wholly out, but they share the commit and its fsync. If a batch's transaction fails, its
symbols are written again one by one, so only the symbol whose write is at fault fails,
with the store's real reason (`stockml.store.prices.WriteFailed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import structlog

from stockml import store

# Outcomes waiting when the writer frees up are committed together (at most this many).
MAX_BATCH = 64


class BatchWriter:
    """The run's store access. `run()` is the commit loop (a task for the run's life),
    ended by `finish()`; `shutdown()` then waits for the thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._pending: asyncio.Queue = asyncio.Queue()
        self._log = structlog.get_logger("ingest")

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(con, *args)` on the writer thread (a query, or a small write of its own)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, self.con, *args)

    async def submit(self, write: store.SymbolWrite) -> int:
        """Queue one symbol's outcome; resolves with its stored row count once committed,
        or raises the store's WriteFailed."""
        future = asyncio.get_running_loop().create_future()
        await self._pending.put((write, future))
        return await future

    async def run(self) -> None:
        """Commit whatever outcomes are waiting, together: one transaction per batch, until
        `finish` asks it to stop (after committing what was queued before)."""
        while True:
            batch = [await self._pending.get()]
            while not self._pending.empty() and len(batch) < MAX_BATCH:
                batch.append(self._pending.get_nowait())
            stop = any(write is None for write, _ in batch)
            batch = [(write, future) for write, future in batch if write is not None]
            if batch:
                await self._commit(batch)
            if stop:
                return

    async def finish(self) -> None:
        """Ask `run` to return once every outcome queued so far is committed: an answer
        that arrived before the run stopped (breaker, Ctrl-C) is kept, not dropped."""
        await self._pending.put((None, None))

    async def _commit(self, batch: list[tuple[store.SymbolWrite, asyncio.Future]]) -> None:
        writes = [w for w, _ in batch]
        try:
            rows = await self.read(store.write_batch, writes)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exception=exc)
                return
            # One symbol's bad write must not fail its neighbours: write each alone.
            self._log.warning("batch_write_failed", symbols=len(batch), error=str(exc))
            for write, future in batch:
                try:
                    alone = await self.read(store.write_batch, [write])
                except Exception as single:
                    _settle(future, exception=single)
                else:
                    _settle(future, result=alone[write.symbol])
            return
        for write, future in batch:
            _settle(future, result=rows[write.symbol])

    def shutdown(self) -> None:
        self._thread.shutdown(wait=True)


def _settle(
    future: asyncio.Future, result: int = 0, exception: BaseException | None = None
) -> None:
    """Resolve a writer future once (a cancelled symbol's future may already be done)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
