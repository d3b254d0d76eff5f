"""How much memory a run may use, and how that becomes symbols per chunk.

A refresh (features, labels) computes and writes symbols in chunks of about `chunk_rows`
price rows; a chunk's cost is its rows times the bytes one price row costs while in
flight (`FEATURE_ROW_BYTES`, `LABEL_ROW_BYTES` in the stages). The budget is the user's
`--memory-limit` (default: a quarter of physical RAM) split three ways:

    BASELINE_BYTES   the interpreter, Numba, polars and DuckDB loaded, before any data
    DuckDB           its buffer pool (`SET memory_limit`): a quarter of the budget, so a
                     scan or insert of a market-sized table spills instead of growing;
                     every store connection starts with the default budget's share
    chunks           the rest: two chunks in flight (one computed while one is written)

Peak resident memory is measured, never estimated: `peak_rss` is the kernel's high-water
mark (`getrusage`) of this process or of its largest waited-for child; `RssWatch` samples
the summed RSS of this process and every descendant (Ray's raylet and workers included)
from /proc while a block runs, an upper bound since shared pages count once per process,
and beside it the summed PSS (the kernel's proportional set size: a page mapped by k
processes counts 1/k in each, so Ray's object store, mapped by every worker that reads the
matrix, counts once): what the tree holds.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from stockml.errors import InputError

# Measured: `stockml features` with 0 stale symbols peaks at ~0.5 GB RSS.
BASELINE_BYTES = 600 * 2**20
# DuckDB below ~256 MiB spills tiny blocks all the time; above a quarter of the budget it
# only caches table blocks we have already written.
DUCKDB_MIN_BYTES = 256 * 2**20
DUCKDB_SHARE = 4
# What DuckDB may keep while the process works without the store (training's fits).
IDLE_DUCKDB_BYTES = 64 * 2**20
# One chunk never drops below this (a symbol is never split anyway): per-chunk overheads
# (a transaction, a query plan) must stay small next to the chunk's work.
MIN_CHUNK_ROWS = 20_000
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def physical_memory() -> int:
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def parse_size(text: str) -> int:
    """`6G`, `512MiB`, `1.5g`, `800000000` -> bytes (binary units). Raises InputError."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"--memory-limit must be a size like 6G or 512M, not {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class MemoryBudget:
    """A memory limit in bytes and how it is shared (see the module docstring)."""

    limit: int

    @classmethod
    def of(cls, limit: int | str | None) -> MemoryBudget:
        """From bytes, a size string, or None (a quarter of physical RAM). A limit that
        leaves nothing for chunks after the baseline is refused (InputError)."""
        if limit is None:
            return cls(physical_memory() // 4)
        value = parse_size(limit) if isinstance(limit, str) else int(limit)
        if value < BASELINE_BYTES + DUCKDB_MIN_BYTES + 64 * 2**20:
            raise InputError(
                f"--memory-limit {value / 2**30:.2f} GiB is too small: at least "
                f"{(BASELINE_BYTES + DUCKDB_MIN_BYTES + 64 * 2**20) / 2**30:.2f} GiB is needed"
            )
        return cls(value)

    @property
    def duckdb_bytes(self) -> int:
        """DuckDB's buffer pool: a quarter of the budget, at least DUCKDB_MIN_BYTES."""
        return max(DUCKDB_MIN_BYTES, self.limit // DUCKDB_SHARE)

    @property
    def chunk_bytes(self) -> int:
        """What the chunks in flight may hold together."""
        return max(0, self.limit - BASELINE_BYTES - self.duckdb_bytes)

    def chunk_rows(self, row_bytes: int) -> int:
        """Price rows per chunk, given what one row costs in flight (all copies, both
        chunks of the pipeline); at least MIN_CHUNK_ROWS."""
        return max(MIN_CHUNK_ROWS, self.chunk_bytes // row_bytes)

    def bound_duckdb(self, con) -> None:
        """Cap DuckDB's buffer pool on `con`'s database (it spills to disk beyond it) for a
        refresh; `release_duckdb` puts the store's default back for the queries after it."""
        con.execute(f"SET memory_limit = '{self.duckdb_bytes // 2**20}MiB'")

    @staticmethod
    def release_duckdb(con) -> None:
        """Back to the bound every store connection starts with (`store.connect`): the
        default budget's DuckDB share, never DuckDB's own 80 % of RAM."""
        MemoryBudget.of(None).bound_duckdb(con)

    @staticmethod
    def idle_duckdb(con) -> None:
        """While this process computes without the store (a run's fits, minutes to hours),
        DuckDB's buffer pool shrinks to IDLE_DUCKDB_BYTES: the table blocks it cached while
        reading the samples (up to its whole share, measured 378 MiB on 82 stocks x 20
        years) are dropped, clean pages of a persistent store that it reads again when
        asked. `bound_duckdb` or `release_duckdb` sets a bound back."""
        con.execute(f"SET memory_limit = '{IDLE_DUCKDB_BYTES // 2**20}MiB'")

    def describe(self) -> str:
        return f"{self.limit / 2**30:.1f} GiB"


def peak_rss() -> int:
    """Peak resident set size in bytes: the larger of this process's high-water mark and
    that of its largest waited-for child (Linux reports KiB, macOS bytes)."""
    scale = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * scale


def own_peak_rss() -> int:
    """This process's own peak RSS in bytes since it started its program: VmHWM of
    /proc/self/status on Linux. Unlike `getrusage`'s ru_maxrss, which Linux carries over
    exec from the process that forked it (a child started by a 4 GiB parent reports at
    least 4 GiB), so benchmarks' children report this. Falls back to `peak_rss`."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return peak_rss()


def _tree_pids(root: int) -> tuple[list[int], dict[int, int]]:
    """The pids of `root` and all its descendants, and every process's RSS in bytes, from
    /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * page  # field 24 of stat: resident pages
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, ()))
    return tree, rss


def _tree_rss(root: int) -> int:
    """Summed RSS in bytes of `root` and all its descendants, from /proc (Linux)."""
    tree, rss = _tree_pids(root)
    return sum(rss.get(pid, 0) for pid in tree)


def _pss(pid: int) -> int:
    """PSS of `pid` in bytes (the `Pss:` line of /proc/PID/smaps_rollup, in kB); 0 when
    the process ended or the kernel has no rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(root: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) in bytes of `root` and all its descendants (Linux)."""
    tree, rss = _tree_pids(root)
    return sum(rss.get(pid, 0) for pid in tree), sum(_pss(pid) for pid in tree)


class RssWatch:
    """`with RssWatch() as watch: ...` then `watch.peak`: the largest summed RSS (bytes) of
    this process tree seen every `interval` seconds, and never below `peak_rss()`;
    `watch.peak_pss`: the largest summed PSS seen (bytes; 0 where /proc has no rollup)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._live = Path("/proc/self/stat").exists()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        if self._live:
            rss, pss = tree_memory(os.getpid())
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)

    def start(self) -> RssWatch:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop sampling; returns `peak` (bytes)."""
        self._stop.set()
        self._thread.join()
        self.sample()
        self.peak = max(self.peak, peak_rss())
        return self.peak

    def __enter__(self) -> RssWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
