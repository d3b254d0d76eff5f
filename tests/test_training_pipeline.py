"""The training run on real Ray: test labels never reach a fitted model; checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stockml import store
from stockml.errors import NothingToDoError, StoreError
from training.pipeline import run_training
from training.ray_runner import load_model

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["logistic", "lightgbm"]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, sp500_bars):
    """Twelve real stocks, 2017-2021: enough for a 5-fold stack in seconds."""
    db = tmp_path_factory.mktemp("train") / "s.duckdb"
    symbols = sp500_bars["symbol"].unique().sort().to_list()[:12]
    bars = sp500_bars.filter(pl.col("symbol").is_in(symbols) & (pl.col("date") >= date(2017, 1, 1)))
    con = store.connect(db)
    con.register(
        "_p",
        bars.select(
            "symbol", "date", "open", "high", "low", "close", "adjclose", "volume"
        ).to_arrow(),
    )
    con.execute("INSERT INTO prices SELECT * FROM _p")
    con.unregister("_p")
    con.close()
    return db


def fit_outputs(run_dir: Path) -> dict[str, np.ndarray]:
    fits = run_dir / "fits"
    return {p.name: np.load(p) for p in sorted(fits.glob("*.npy"))}


def test_changing_test_labels_changes_no_fitted_model(small_store):
    """Every out-of-fold prediction, every refit's test prediction and the stack's test
    probabilities are identical after the test period's labels are scrambled."""
    first = run_training(small_store, "swing", progress=False, models=MODELS)
    before = fit_outputs(first.run_dir)
    stack_before = np.load(first.run_dir / "test_probabilities.npy")
    con = store.connect(small_store)
    test_start = con.execute(
        "SELECT test_start FROM training_runs WHERE run_id = ?", [first.run_id]
    ).fetchone()[0]
    con.execute(
        "UPDATE labels SET label = CASE WHEN label = 1 THEN -1 ELSE 1 END "
        "WHERE profile = 'swing' AND label IS NOT NULL AND date >= ?",
        [test_start],
    )
    con.close()
    second = run_training(small_store, "swing", progress=False, models=MODELS)
    assert second.run_id != first.run_id  # a new run: nothing reused from the first
    after = fit_outputs(second.run_dir)
    assert before.keys() == after.keys() and len(before) == len(MODELS) * 6
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    np.testing.assert_array_equal(stack_before, np.load(second.run_dir / "test_probabilities.npy"))
    assert first.metrics["stack"]["accuracy"] != second.metrics["stack"]["accuracy"]


def test_rerun_skips_finished_fits_and_refuses_tampered_checkpoints(small_store):
    """A rerun refits only the fit whose checkpoint is gone; a model whose file no longer
    matches its recorded hash is never unpickled."""
    result = run_training(small_store, "swing", progress=False, models=MODELS)
    fits = result.run_dir / "fits"
    stamps = {p.name: p.stat().st_mtime_ns for p in fits.glob("*.pkl")}
    (fits / "logistic__2.json").unlink()
    run_training(small_store, "swing", progress=False, models=MODELS)
    changed = {p.name for p in fits.glob("*.pkl") if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {"logistic__2.pkl"}
    with (fits / "lightgbm__0.pkl").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(StoreError, match="does not match its recorded hash"):
        load_model(fits, "lightgbm__0")


def test_run_is_recorded_with_metrics_and_report(small_store):
    """training_runs and model_metrics hold the run; report.md shows baseline and audit."""
    result = run_training(small_store, "swing", progress=False, models=MODELS)
    con = store.connect(small_store, read_only=True)
    models = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT model FROM model_metrics WHERE run_id = ?", [result.run_id]
        ).fetchall()
    }
    con.close()
    assert models == {*MODELS, "stack", "audit_random_split"}
    report = result.report.read_text()
    assert "Majority-class baseline" in report and "random 80/20 row split" in report


def test_nothing_to_train_is_one_line(tmp_path):
    """An empty store: one clear line and exit status 3."""
    db = tmp_path / "empty.duckdb"
    store.connect(db).close()
    with pytest.raises(NothingToDoError):
        run_training(db, progress=False, models=MODELS)
    proc = subprocess.run(
        [sys.executable, "-m", "stockml.cli", "train", "--db", str(db), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert proc.returncode == 3 and proc.stderr.startswith("stockml: error: no prices")


def test_signals_score_the_newest_day_of_every_stock(small_store, tmp_path):
    """One signal per stock, from its newest day, with probabilities summing to one;
    stored in `signals` and written by the CLI as CSV."""
    from training.signals import latest_signals

    result = run_training(small_store, "swing", progress=False, models=MODELS)
    frame = latest_signals(small_store, result.run_id)
    assert frame.height == 12 and frame["symbol"].n_unique() == 12
    assert set(frame["signal"]) <= {"BUY CALL", "BUY PUT", "HOLD"}
    total = frame["p_win"] + frame["p_timeout"] + frame["p_loss"]
    np.testing.assert_allclose(total.to_numpy(), 1.0, atol=1e-9)
    con = store.connect(small_store, read_only=True)
    newest = con.execute("SELECT max(date) FROM prices").fetchone()[0]
    stored = con.execute(
        "SELECT count(*) FROM signals WHERE run_id = ?", [result.run_id]
    ).fetchone()[0]
    con.close()
    assert stored == 12 and frame["date"].max() == newest
    out = tmp_path / "signals.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stockml.cli",
            "signals",
            "--db",
            str(small_store),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert pl.read_csv(out).height == 12


def test_kill_9_mid_training_then_rerun_refits_nothing_finished(small_store):
    """kill -9 of `stockml train` while fits run; the rerun keeps every finished fit
    (same files, untouched), fits only the rest, and completes the run."""
    import shutil
    import signal
    import time

    models = "random_forest,svm"  # slow enough here to be killed between fits
    db = small_store.parent / "kill9" / "s.duckdb"
    db.parent.mkdir(exist_ok=True)
    shutil.copy(small_store, db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", "train", "--db", str(db), "--models", models],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    done: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = list(db.parent.glob("runs/*/fits/*.json"))
        if len(done) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, Ray's raylet and its workers
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    finished = {
        p.with_suffix(".pkl"): p.with_suffix(".pkl").stat().st_mtime_ns
        for p in db.parent.glob("runs/*/fits/*.json")
    }
    assert 2 <= len(finished) < 12
    result = run_training(db, "swing", progress=False, models=models.split(","))
    for path, stamp in finished.items():
        assert path.stat().st_mtime_ns == stamp, f"{path.name} was refitted"
    assert len(list((result.run_dir / "fits").glob("*.json"))) == 12
    assert result.report.exists() and "stack" in result.metrics


def test_serial_baseline_fits_exactly_what_ray_fits(small_store):
    """The benchmark's serial baseline is the same work: every checkpointed prediction and
    the stack's test probabilities are identical to the Ray run's."""
    import shutil

    db = small_store.parent / "serial" / "s.duckdb"
    db.parent.mkdir(exist_ok=True)
    shutil.copy(small_store, db)
    parallel = run_training(db, "swing", progress=False, models=MODELS)
    by_ray = fit_outputs(parallel.run_dir)
    stack_by_ray = np.load(parallel.run_dir / "test_probabilities.npy")
    stamps = {p: p.stat().st_mtime_ns for p in (parallel.run_dir / "fits").glob("*.npy")}
    serial = run_training(db, "swing", progress=False, models=MODELS, fresh=True, serial=True)
    assert serial.run_id == parallel.run_id
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())  # refitted, not reused
    in_process = fit_outputs(serial.run_dir)
    assert by_ray.keys() == in_process.keys() and len(by_ray) == len(MODELS) * 6
    for name in by_ray:
        np.testing.assert_array_equal(by_ray[name], in_process[name], err_msg=name)
    np.testing.assert_array_equal(stack_by_ray, np.load(serial.run_dir / "test_probabilities.npy"))
