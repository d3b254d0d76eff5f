"""Progress reaches every reader: piped (as under cron) each step says when it starts and
ends and a heartbeat line comes every few seconds with counts, rate and ETA; the JSON log
gets the same figures; a terminal gets rich bars instead of lines."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from ingest.server import FaultPlan, MarketData, ServerThread, YahooServer
from ingest.universe import listing_rows
from tests.cli_support import cli_env, run_cli, run_in_terminal

HEARTBEAT = {"STOCKML_HEARTBEAT_S": "0.5"}
# "ingest: 5/12 (42%) · 3.1/s · 0:01 elapsed · ETA 0:02 · ok 5 · ..."
BEAT = re.compile(
    r"^(?P<step>[\w +]+): (?P<done>[\d,.]+)/(?P<total>[\d,.]+) \((?P<pct>\d+)%\)"
    r"(?: · [^·]+/(?:s|min))? · (?P<elapsed>[\d:]+) elapsed · ETA (?P<eta>[-\d:]+)"
)
END = date(2024, 6, 28)


@pytest.fixture(scope="module")
def yahoo():
    """The Yahoo-compatible server on 12 simulated stocks, each answer 0.3 s late."""
    listings = listing_rows()[:12]
    market = MarketData.from_simulator(listings, END, seed=3, start=date(2022, 1, 3))
    with ServerThread(YahooServer(market, FaultPlan(), latency=0.3)) as server:
        yield server.base_url, [s for s, _, _ in listings]


def ingest_args(yahoo, db: Path) -> list[str]:
    base_url, symbols = yahoo
    return [
        "ingest",
        "--symbols",
        ",".join(symbols),
        "--start",
        "2023-06-01",
        "--end",
        END.isoformat(),
        "--base-url",
        base_url,
        "--concurrency",
        "2",
        "--rate",
        "50",
        "--db",
        str(db),
    ]


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def beats(stderr: str, step: str) -> list[re.Match]:
    found = [BEAT.match(line) for line in stderr.splitlines()]
    return [m for m in found if m and m["step"] == step]


@pytest.fixture(scope="module")
def piped_ingest(yahoo, tmp_path_factory):
    db = tmp_path_factory.mktemp("piped") / "s.duckdb"
    proc = run_cli(*ingest_args(yahoo, db), env=cli_env(**HEARTBEAT))
    assert proc.returncode == 0, proc.stderr
    return proc, db


def test_piped_ingest_says_start_heartbeats_and_end(piped_ingest):
    """With stderr a pipe: 'ingest: started, 12 to do', at least two heartbeat lines whose
    counts only grow, then 'ingest: done, 12 in ...'; no bar, cut or whole."""
    proc, _ = piped_ingest
    lines = proc.stderr.splitlines()
    assert "ingest: started, 12 to do" in lines
    found = beats(proc.stderr, "ingest")
    assert len(found) >= 2, proc.stderr
    done = [int(m["done"]) for m in found]
    assert done == sorted(done) and all(m["total"] == "12" for m in found)
    assert any(m["eta"] != "-:--" for m in found)
    assert any(re.match(r"ingest: done, 12 in \d+:\d\d", line) for line in lines), proc.stderr
    progress = [line for line in lines if line.startswith("ingest") or "%" in line]
    assert not [line for line in progress if "━" in line or "…" in line], proc.stderr


def test_piped_heartbeats_reach_the_json_log(piped_ingest):
    """The log beside the store has step_started, periodic `progress` events with counts,
    rate and ETA, and step_done, for the ingest step."""
    _, db = piped_ingest
    mine = [e for e in events(db.with_suffix(".log")) if e.get("step") == "ingest"]
    kinds = [e["event"] for e in mine]
    assert kinds[0] == "step_started" and kinds[-1] == "step_done"
    progress = [e for e in mine if e["event"] == "progress"]
    assert len(progress) >= 2
    for e in progress:
        assert e["total"] == 12 and 0 <= e["done"] <= 12
        assert {"rate_per_s", "eta_s", "elapsed_s", "timestamp"} <= e.keys()
    assert mine[-1]["done"] == 12


def test_quiet_draws_nothing_but_still_logs_progress(yahoo, tmp_path):
    """--quiet: no progress on stderr, yet the JSON log still records the step."""
    db = tmp_path / "s.duckdb"
    proc = run_cli(*ingest_args(yahoo, db), "--quiet", env=cli_env(**HEARTBEAT))
    assert proc.returncode == 0, proc.stderr
    assert "ingest:" not in proc.stderr
    kinds = [e["event"] for e in events(db.with_suffix(".log")) if e.get("step") == "ingest"]
    assert kinds[0] == "step_started" and kinds[-1] == "step_done" and "progress" in kinds


def test_a_terminal_gets_a_bar_not_lines(yahoo, tmp_path):
    """On a terminal the same run draws rich's bar (with its ETA) and no plain lines."""
    code, screen = run_in_terminal(
        *ingest_args(yahoo, tmp_path / "s.duckdb"), env=cli_env(**HEARTBEAT)
    )
    assert code == 0, screen
    assert "━" in screen and "ETA" in screen
    assert "ingest: started" not in screen and not beats(screen, "ingest")


@pytest.mark.slow
def test_piped_train_prints_periodic_lines(quick_demo_store, tmp_path):
    """`stockml train` with stdout and stderr pipes: periodic 'train: N/M (P%) · rate ·
    elapsed · ETA' lines on stderr and `progress` events for the train step in the log;
    the pooled table on stdout only; Ray's token-authentication banner nowhere."""
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(quick_demo_store, db)
    proc = run_cli(
        "train",
        "--db",
        str(db),
        "--models",
        "logistic",
        "--windows",
        "1",
        env=cli_env(STOCKML_HEARTBEAT_S="1"),
        timeout=1200,  # minutes on a loaded 2-core machine
    )
    assert proc.returncode == 0, proc.stderr
    found = beats(proc.stderr, "train")
    assert len(found) >= 2, proc.stderr
    assert all(m["total"] == found[0]["total"] for m in found)
    train_events = [e for e in events(db.with_suffix(".log")) if e.get("step") == "train"]
    assert sum(e["event"] == "progress" for e in train_events) >= 2
    assert "pooled walk-forward test windows" in proc.stdout
    assert "pooled walk-forward" not in proc.stderr
    assert "Token authentication" not in proc.stderr + proc.stdout
    # The bar's total is the work: it ends done, not "stopped at 136/176" (a total that
    # counted fits tuning never chose), and every fit that ran is one log event.
    total = int(found[-1]["total"].replace(",", ""))
    assert re.search(rf"^train: done, {total} in ", proc.stderr, re.M), proc.stderr
    assert "train: stopped at" not in proc.stderr
    fits = [e for e in events(db.with_suffix(".log")) if e["event"] == "fit_done"]
    assert len(fits) == len({(e["model"], e["fold"]) for e in fits}) == total
    assert all(e["seconds"] > 0 and e["rows"] > 0 for e in fits)


def test_ctrl_c_keeps_finished_fits_and_the_rerun_resumes(quick_demo_store, tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while fits run: exit
    130 with one line naming the run, the fits kept and how to resume; the same command
    again says it resumes and how far the run had come, refits nothing kept, and ends
    done."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.cli_support import ROOT

    db = tmp_path / "demo.duckdb"
    shutil.copyfile(quick_demo_store, db)
    args = ["train", "--db", str(db), "--models", "mlp", "--windows", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        kept = [p for p in tmp_path.glob("runs/*/fits/*.json") if ".tmp." not in p.name]
        if len(kept) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    said = re.fullmatch(
        r"stockml: error: interrupted: run (\w+) kept (\d+) finished fits in (\S+); "
        r"rerun the same command to resume",
        last,
    )
    assert said, stderr
    run_id, finished = said[1], int(said[2])
    stamps = {
        p: p.stat().st_mtime_ns
        for p in tmp_path.glob(f"runs/{run_id}/fits/*.json")
        if ".tmp." not in p.name
    }
    assert finished == len(stamps) >= 2
    again = run_cli(*args, env=cli_env(), timeout=1200)
    assert again.returncode == 0, again.stderr
    resumed = re.search(rf"^resuming run {run_id}: (\d+) of (\d+) fits done$", again.stderr, re.M)
    assert resumed and int(resumed[1]) == finished < int(resumed[2]), again.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # none refitted
    assert re.search(r"^train: done, ", again.stderr, re.M), again.stderr
