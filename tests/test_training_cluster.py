"""Training on a real two-node Ray cluster started on this machine with `ray start`: fits
spread over both nodes, only the driver writes, and a worker node killed mid-run loses
nothing and duplicates nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from stockml import store
from tests.test_training_pipeline import fit_outputs

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
MODELS = ["logistic", "lightgbm"]
WINDOWS = 1  # 5 inner blocks + 1 window: per model, fits of blocks 1-5 and the live fit
BASE_FITS = {(m, f"b{b}") for m in MODELS for b in range(1, 6)} | {(m, "live") for m in MODELS}
TUNING_TAG = re.compile(r"@.*")  # a tuning candidate's fold, e.g. b3@t1
NODE_ID = re.compile(r"Node ID: ([0-9a-f]{56})")
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc): a node's raylet, GCS, agents and
    the Ray workers the raylet started in sessions of their own."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


@dataclass
class RayNode:
    """One `ray start --block` process, its own temp dir, and the node id it registered."""

    process: subprocess.Popen
    temp_dir: Path
    node_id: str = ""

    def wait_registered(self) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.temp_dir / "start.log").read_text()
            for log in self.temp_dir.glob("session_*/logs/raylet.out"):
                found = NODE_ID.search(log.read_text(errors="replace"))
                if found:
                    self.node_id = found.group(1)
                    return self.node_id
            time.sleep(0.2)
        raise TimeoutError(f"no Ray node came up in {self.temp_dir}")

    def kill(self) -> None:
        """SIGKILL the node's whole process tree, as if its machine had died."""
        for pid in process_tree(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class LocalCluster:
    head: RayNode
    worker: RayNode
    address: str
    env: dict[str, str]


def start_node(env: dict[str, str], args: list[str]) -> RayNode:
    # A short root: Ray's socket paths below it must fit in 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    ports = ("dashboard-agent-listen", "metrics-export", "runtime-env-agent", "node-manager")
    command = [
        str(RAY),
        "start",
        "--block",
        "--num-cpus=1",
        "--object-store-memory=100000000",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        *(f"--{name}-port={free_port()}" for name in ports),
        *args,
    ]
    with (temp_dir / "start.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return RayNode(process, temp_dir)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A head and a worker node, one CPU each, with token authentication (a token of
    their own, never ~/.ray's); both torn down by process id, whatever the tests did."""
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        # A dead node is declared dead after 3 missed checks 0.5 s apart (Ray's default:
        # 5 missed, 3 s apart), so the kill test does not wait 15 s for it.
        RAY_health_check_period_ms="500",
        RAY_health_check_failure_threshold="3",
    )
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    address = f"127.0.0.1:{port}"
    nodes = []
    try:
        head_args = ["--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
        nodes.append(start_node(env, [*head_args, "--include-dashboard=false"]))
        nodes[0].wait_registered()
        nodes.append(start_node(env, [f"--address={address}", "--node-ip-address=127.0.0.1"]))
        nodes[1].wait_registered()
        yield LocalCluster(nodes[0], nodes[1], address, env)
    finally:
        for node in reversed(nodes):
            if node.process.poll() is None:
                node.kill()
            shutil.rmtree(node.temp_dir, ignore_errors=True)


def train_command(db: Path, address: str) -> list[str]:
    models = ",".join(MODELS)
    return [
        *(sys.executable, "-m", "stockml.cli", "train", "--db", str(db), "--quiet"),
        *("--models", models, "--windows", str(WINDOWS), "--ray-address", address),
    ]


def recorded_fits(db: Path, run_id: str) -> list[tuple]:
    con = store.connect(db, read_only=True)
    try:
        return con.execute(
            "SELECT model, fold, node_id, host, seconds, rows FROM training_fits "
            "WHERE run_id = ? ORDER BY model, fold",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def finished_fits(db: Path) -> dict[str, str]:
    """{fit name: node id} of every checkpoint the driver has finished (manifest written,
    which comes last)."""
    manifests = db.parent.glob("runs/*/fits/*.json")
    return {
        m.stem: json.loads(m.with_suffix(".record").read_text())["node_id"]
        for m in manifests
        if ".tmp" not in m.name
    }


def only_run(db: Path) -> Path:
    (run_dir,) = (db.parent / "runs").iterdir()
    return run_dir


def assert_each_fit_once(db: Path, run_dir: Path) -> list[tuple]:
    """One training_fits row per fit of the run, every (model, fold) among them, and exactly
    one model, prediction, record and manifest per fit in the run folder; nothing else
    (no second copy, no temporary file left by an interrupted write). Returns the rows."""
    fits = recorded_fits(db, run_dir.name)
    names = [f"{m}__{f}" for m, f, *_ in fits]
    assert len(set(names)) == len(names)
    assert {(m, TUNING_TAG.sub("", f)) for m, f, *_ in fits} == BASE_FITS
    files = sorted(p.name for p in (run_dir / "fits").iterdir())
    expected = sorted(f"{n}{s}" for n in names for s in (".pkl", ".npy", ".record", ".json"))
    assert files == expected
    return fits


@pytest.fixture(scope="module")
def clean_run(cluster: LocalCluster, small_store: Path) -> Path:
    """`stockml train --ray-address` on a copy of the small store, the cluster intact;
    returns the copy's store path."""
    db = small_store.parent / "cluster_clean" / "s.duckdb"
    db.parent.mkdir()
    shutil.copy(small_store, db)
    proc = subprocess.run(
        train_command(db, cluster.address),
        cwd=ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db


@pytest.mark.slow
def test_cli_train_on_a_two_node_cluster_records_fits_on_both_nodes(
    cluster: LocalCluster, clean_run: Path
):
    """Every (model, fold) fit is checkpointed once and recorded once in training_fits,
    with its node, host, time and rows; the fits ran on both nodes and nowhere else."""
    fits = assert_each_fit_once(clean_run, only_run(clean_run))
    assert {node for _, _, node, *_ in fits} == {cluster.head.node_id, cluster.worker.node_id}
    assert {host for _, _, _, host, *_ in fits} == {socket.gethostname()}
    assert all(seconds > 0 and rows > 0 for *_, seconds, rows in fits)


@pytest.mark.slow
def test_killing_the_worker_node_mid_run_loses_and_duplicates_nothing(
    cluster: LocalCluster, clean_run: Path
):
    """SIGKILL of the worker node's every process once it has delivered a fit and while
    fits remain: Ray reruns what was lost there on the head, the run completes with each
    fit checkpointed and recorded once, and every prediction equals the clean run's."""
    db = clean_run.parent.parent / "cluster_kill" / "s.duckdb"
    db.parent.mkdir()
    shutil.copy(clean_run, db)  # features and labels are there: only the fits remain
    stderr_path = db.parent / "stderr.txt"
    with stderr_path.open("wb") as stderr_file:
        proc = subprocess.Popen(
            train_command(db, cluster.address),
            cwd=ROOT,
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        on_worker: list[str] = []
        while not on_worker and proc.poll() is None and time.monotonic() < deadline:
            done = finished_fits(db)
            on_worker = [name for name, node in done.items() if node == cluster.worker.node_id]
            time.sleep(0.05)
        assert on_worker and proc.poll() is None, "the worker delivered no fit before the end"
        cluster.worker.kill()
        time.sleep(1)  # a result that reached the driver before the kill is written by now
        before_kill = set(finished_fits(db))
        total = len(recorded_fits(clean_run, only_run(clean_run).name))
        assert len(before_kill) < total - 1, "too few fits left when the worker died"
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    driver_logs = cluster.head.temp_dir.glob("session_*/logs/python-core-driver-*.log")
    retried = [log for log in driver_logs if "NODE_DIED" in log.read_text(errors="replace")]
    assert retried and "resubmit task" in retried[0].read_text(errors="replace")  # Ray's own log
    run_dir = only_run(db)
    assert run_dir.name == only_run(clean_run).name
    fits = assert_each_fit_once(db, run_dir)
    assert [f[:2] for f in fits] == [f[:2] for f in recorded_fits(clean_run, run_dir.name)]
    after_kill = [node for m, f, node, *_ in fits if f"{m}__{f}" not in before_kill]
    assert after_kill and set(after_kill) == {cluster.head.node_id}
    clean = fit_outputs(only_run(clean_run))
    killed = fit_outputs(run_dir)
    assert clean.keys() == killed.keys()
    for name in clean:
        np.testing.assert_array_equal(clean[name], killed[name], err_msg=name)
    np.testing.assert_array_equal(
        np.load(only_run(clean_run) / "test_probabilities.npy"),
        np.load(run_dir / "test_probabilities.npy"),
    )


def test_a_store_without_training_fits_gains_it_on_connect(tmp_path):
    """A store of the previous release (training_runs, no training_fits) is given the
    empty table by a writable connect; its runs are kept."""
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE training_runs (run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT "
        "NULL, profile VARCHAR NOT NULL, status VARCHAR NOT NULL, train_start DATE, "
        "train_end DATE, test_start DATE, test_end DATE, n_train BIGINT, n_test BIGINT, "
        "data_fingerprint VARCHAR, code_version VARCHAR, params VARCHAR, run_dir VARCHAR); "
        "INSERT INTO training_runs (run_id, created_at, profile, status) "
        "VALUES ('r', now(), 'swing', 'done')"
    )
    con.close()
    con = store.connect(db)
    columns = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'training_fits' ORDER BY ordinal_position"
    ).fetchall()
    runs = con.execute("SELECT run_id FROM training_runs").fetchall()
    con.close()
    assert [c[0] for c in columns] == [
        "run_id",
        "model",
        "fold",
        "node_id",
        "host",
        "seconds",
        "rows",
    ]
    assert runs == [("r",)]


def test_an_address_no_cluster_answers_at_is_one_line(tmp_path):
    """`stockml train --ray-address` naming a port nobody listens on fails at once with
    one line and exit status 2, before any work on the store."""
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        train_command(tmp_path / "s.duckdb", address),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"stockml: error: no Ray cluster answers at {address}")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "s.duckdb").exists()
