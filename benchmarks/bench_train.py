"""Walk-forward training wall time: the Ray-parallel run against the same fits run serially.

The store is the default universe (82 stocks, 2 years plus warm-up) from the built-in
simulated market, ingested through the fixture server exactly as `stockml demo` does (Yahoo
is not reachable here). Then, side by side in this run:
- parallel: `stockml train --fresh` as the user runs it (4 walk-forward windows, one base
  fit per date block, the live model; new process, local Ray, 2 CPUs);
- serial: the same fits, one after another, one thread each, in this process;
their wall times, the ratio, the peak memory of each (summed RSS over the process tree,
Ray's workers included), and a check that both produced the same test predictions.

    .venv/bin/python benchmarks/bench_train.py [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STOCKML = Path(sys.executable).with_name("stockml")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and all its descendants (shared pages counted per process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


class PeakMemory:
    """Samples the process tree's RSS every 0.2 s while the block runs."""

    def __init__(self, root: int) -> None:
        self.root, self.peak, self._stop = root, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss(self.root))

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def build_store(db: Path) -> None:
    subprocess.run(
        [str(STOCKML), "demo", "--no-train", "--quiet", "--db", str(db)], check=True, cwd=ROOT
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing store (default: build one)")
    args = parser.parse_args()

    from stockml.logs import configure_logging
    from training.config import TrainConfig
    from training.pipeline import run_training

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        configure_logging(Path(tmp) / "bench_train.log")
        if args.db is None:
            started = time.perf_counter()
            build_store(db)
            print(
                f"store: default universe, 2 years, built in {time.perf_counter() - started:.0f} s"
            )

        # parallel, as the user runs it
        started = time.perf_counter()
        with PeakMemory(os.getpid()) as parallel_mem:
            cli = subprocess.Popen(
                [str(STOCKML), "train", "--db", str(db), "--fresh", "--quiet"], cwd=ROOT
            )
            cli.wait()
        parallel = time.perf_counter() - started
        if cli.returncode != 0:
            raise SystemExit(f"stockml train failed with exit code {cli.returncode}")
        runs = sorted((db.parent / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        parallel_proba = np.load(runs[-1] / "test_probabilities.npy")

        # serial, the same fits in this process
        started = time.perf_counter()
        with PeakMemory(os.getpid()) as serial_mem:
            config = TrainConfig.create("swing")  # what `stockml train` builds by default
            result = run_training(db, config, fresh=True, progress=True, serial=True)
        serial = time.perf_counter() - started
        serial_proba = np.load(result.run_dir / "test_probabilities.npy")
        fits = len(list((result.run_dir / "fits").glob("*.json")))

    same = parallel_proba.shape == serial_proba.shape and np.allclose(
        parallel_proba, serial_proba, rtol=0, atol=1e-9
    )
    stack = result.metrics["stack"]
    print(
        f"pooled walk-forward test windows: stack accuracy {stack['accuracy']:.3f}, "
        f"majority baseline {stack['majority_baseline']:.3f}, log loss {stack['log_loss']:.3f} "
        f"vs prior {result.metrics['baseline_prior']['log_loss']:.3f}, call precision "
        f"{stack['call_precision']:.3f} at {stack['call_coverage']:.1%} coverage"
    )
    print(f"fits: {fits} (8 models x (8 date blocks + the live refit))")
    print(
        f"parallel (stockml train, Ray, {os.cpu_count()} CPUs): {parallel:6.1f} s, "
        f"peak RSS {parallel_mem.peak / 2**30:.2f} GiB"
    )
    print(
        f"serial (same fits, one process):    {serial:6.1f} s, "
        f"peak RSS {serial_mem.peak / 2**30:.2f} GiB"
    )
    print(
        f"parallel / serial: {parallel / serial:.2f}  (goal <= 0.65; 5-minute budget: "
        f"{'met' if parallel <= 300 else 'missed'})"
    )
    print(f"same test probabilities from both: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
