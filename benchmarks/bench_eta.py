"""How far the train bar's ETA is from the time the fits really took, against a count-based one.

Reads the JSON log of a finished `stockml train` (the `<db>.log` beside its store): the
last train step's `progress` events carry the ETA the bar showed (`eta_s`, weighted by
each fit's expected cost: training/fit_progress.py) and rich's fits-per-second rate
(`rate_per_s`), from which a count-based ETA is (fits left) / rate, as the bar showed it
before. The step's `step_done` gives when the fits really ended. Printed: both ETAs beside
the real time left every tenth beat, and the median relative error of each over the first
quarter, the second quarter and the second half of the step. Run a train with frequent
beats first, e.g. on the demo's store:

    .venv/bin/stockml demo --no-train --quiet --db /tmp/eta/d.duckdb
    STOCKML_HEARTBEAT_S=3 .venv/bin/stockml train --fresh --db /tmp/eta/d.duckdb 2>/dev/null
    .venv/bin/python benchmarks/bench_eta.py /tmp/eta/d.log
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def train_step(log: Path) -> tuple[list[dict], float]:
    """The last train step's progress events and its length in seconds."""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    train = [e for e in events if e.get("step") == "train"]
    starts = [i for i, e in enumerate(train) if e["event"] == "step_started"]
    if not starts:
        raise SystemExit(f"{log}: no train step in this log")
    last = train[starts[-1] :]
    done = [e for e in last if e["event"] == "step_done"]
    if not done:
        raise SystemExit(f"{log}: the last train step did not finish")
    return [e for e in last if e["event"] == "progress"], done[0]["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="the JSON log beside the store (<db>.log)")
    args = parser.parse_args()
    beats, end = train_step(args.log)
    rows = [
        (
            e["elapsed_s"],
            end - e["elapsed_s"],
            e["eta_s"],
            (e["total"] - e["done"]) / e["rate_per_s"],
        )
        for e in beats
        if e.get("rate_per_s") and e.get("eta_s") is not None and end > e["elapsed_s"]
    ]
    print(f"train step: {end:.0f} s, {len(rows)} beats with an ETA")
    print("| elapsed s | really left s | ETA shown (cost-weighted) | count-based ETA |")
    print("| --- | --- | --- | --- |")
    for elapsed, left, shown, count in rows[::10]:
        print(f"| {elapsed:.0f} | {left:.0f} | {shown:.0f} | {count:.0f} |")
    for low, high, part in (
        (0, 0.25, "first quarter"),
        (0.25, 0.5, "second quarter"),
        (0.5, 1, "second half"),
    ):
        chosen = [r for r in rows if low <= r[0] / end < high]
        if not chosen:
            continue
        shown = statistics.median(abs(r[2] - r[1]) / r[1] for r in chosen)
        count = statistics.median(abs(r[3] - r[1]) / r[1] for r in chosen)
        print(
            f"{part}: median |ETA - really left| / really left: shown {shown:.0%}, "
            f"count-based {count:.0%} ({len(chosen)} beats)"
        )


if __name__ == "__main__":
    main()
