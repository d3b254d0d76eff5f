"""The training run on real Ray: test labels never reach a fitted model; checkpoints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stockml import store
from stockml.errors import NothingToDoError, StoreError
from training.config import REFIT_EVERY, TrainConfig
from training.pipeline import run_training
from training.recorder import RunFolder, runs_root

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["logistic", "lightgbm"]


def config(models=MODELS, **fields) -> TrainConfig:
    """The swing profile's default config over `models`, with 4 windows: the 12-stock store
    (labels 2018-01 .. 2021-03) has one eligible year, so 4 equal windows."""
    return TrainConfig.create("swing", models, **{"windows": 4, **fields})


# config()'s blocks: 1 .. 4 before the windows (block 0 only trains), windows 5 .. 8
INNER, WINDOW_BLOCKS = 4, range(5, 9)
# the blocks with a fit of their own: every inner block and every REFIT_EVERY-th window
FITTED_BLOCKS = [*range(1, INNER + 1), *WINDOW_BLOCKS[::REFIT_EVERY]]
# per model: those, the live fit, and the two tuning alternatives on each inner block
FITS_PER_MODEL = len(FITTED_BLOCKS) + 1 + 2 * INNER


def fit_outputs(run_dir: Path) -> dict[str, np.ndarray]:
    fits = run_dir / "fits"
    return {p.name: np.load(p) for p in sorted(fits.glob("*.npy"))}


def window_state(result) -> dict:
    """What each window fitted and chose: thresholds, calibration, the base models its
    stack kept and their weights, test probabilities (and the run's tuning choice, made
    before window 1)."""
    tuning = [(m, t["chosen"], t["scores"][0], t["scores"][1]) for m, t in result.tuning.items()]
    return {
        w.number: (
            w.decision.rule.t_call,
            w.decision.rule.t_put,
            w.decision.calibration.calibrator is None,
            w.decision.calibration.brier_raw,
            w.proba["stack"],
            np.array(w.kept),
            np.array(sorted(w.weights.items()), dtype=object),
            np.array(tuning, dtype=object),
        )
        for w in result.windows
    }


def fit_block(name: str) -> int:
    """The block a checkpoint file predicts: `lightgbm__b3@t1.npy` -> 3."""
    return int(re.search(r"__b(\d+)", name).group(1))


def store_copy(small_store: Path, name: str) -> Path:
    """The module's store copied, with its runs folder, into a folder of its own: a test
    that writes its copy resumes the module's default run (config()) from its fits
    instead of fitting it again, and leaves the module's store as it was."""
    import shutil

    db = small_store.parent / name / "s.duckdb"
    db.parent.mkdir()
    shutil.copy(small_store, db)
    if runs_root(small_store).exists():
        shutil.copytree(runs_root(small_store), runs_root(db))
    return db


@pytest.mark.parametrize("from_window", [1, 4])
def test_changing_test_labels_changes_nothing_fitted_or_chosen(small_store, from_window):
    """Scramble every label (outcome and length) from the purge before test window k on:
    every base fit that predicts a block up to k, and every window up to k (its stack's
    test probabilities, calibration, thresholds, kept base models and their weights, and
    the tuning choice) is identical; only scores change."""
    from training.dataset import load_samples

    first = run_training(small_store, config(), progress=False)  # the module's run
    before, state_before = fit_outputs(first.run_dir), window_state(first)
    db = store_copy(small_store, f"scramble{from_window}")
    con = store.connect(db)
    dates = load_samples(con, "swing").dates
    # From the purge before the window on: those labels end inside the window, so nothing
    # of the window may depend on them either (their outcome, nor how long they lasted,
    # which the uniqueness weights read).
    days = np.unique(dates)
    window_start = np.searchsorted(days, dates[first.windows[from_window - 1].rows.min()])
    start = days[window_start - 14]
    con.execute(
        "UPDATE labels SET label = CASE WHEN label = 1 THEN -1 ELSE 1 END, "
        "exit_offset = CASE WHEN exit_offset > 1 THEN exit_offset - 1 ELSE 14 END "
        "WHERE profile = 'swing' AND label IS NOT NULL AND date >= ?",
        [start],
    )
    con.close()
    second = run_training(db, config(), progress=False)
    assert second.run_id != first.run_id  # a new run: nothing reused from the first
    after, state_after = fit_outputs(second.run_dir), window_state(second)
    last_block = 4 + from_window  # blocks 0..4 before the windows; block 0 only trains
    kept = [n for n in before if "live" not in n and fit_block(n) <= last_block]
    # every model's fits of blocks 1..k (those with a fit of their own), plus the two
    # tuning alternatives' (the regularised one and, the run being weighted, the
    # unweighted default) inner blocks 1..4
    fitted = [b for b in FITTED_BLOCKS if b <= last_block]
    assert len(kept) == len(MODELS) * (len(fitted) + 2 * INNER)
    assert first.tuning and all(w.kept and w.weights for w in first.windows)
    for name in kept:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    for number in range(1, from_window + 1):
        for a, b in zip(state_before[number], state_after[number], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"window {number}")
    assert first.metrics["stack"]["accuracy"] != second.metrics["stack"]["accuracy"]


def test_saved_stack_predicts_what_the_pipeline_evaluated(small_store):
    """The last window's stack rebuilt from its saved fits and combiner gives exactly
    the test probabilities the pipeline evaluated; the live signal model is one artifact
    whose base models are in the run's model order."""
    from training.dataset import load_samples
    from training.decision import SignalModel
    from training.folds import Fold
    from training.stacking import StackedModel

    result = run_training(small_store, config(), progress=False)
    window = result.windows[-1]
    block = max(b for b in FITTED_BLOCKS if b <= INNER + window.number)  # the fit serving it
    run = RunFolder.open(runs_root(small_store), result.run_id)
    chosen = {m: Fold(block, t["chosen"]).name for m, t in result.tuning.items()}
    stack = StackedModel.from_fitted(
        [(m, run.fit_model(f"{m}__{chosen[m]}")) for m in window.kept],
        run.load_model(f"meta__b{INNER + window.number}"),
    )
    decision = window.decision
    model = SignalModel(stack, decision.rule, decision.calibration.calibrator)
    con = store.connect(small_store, read_only=True)
    samples = load_samples(con, "swing")
    con.close()
    proba = model.predict_proba(samples.x[window.rows])
    np.testing.assert_allclose(proba, window.proba["stack"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.decide(proba), window.signals)
    live = run.load_model("signal_model")
    assert set(live.stack.names_) <= set(MODELS) and live.stack.names_
    assert {"call_trades", "put_trades"} <= set(run.load_json("track_record"))


def test_rerun_skips_finished_fits_and_refuses_tampered_checkpoints(small_store):
    """A rerun refits only the fit whose checkpoint is gone; a model whose file no longer
    matches its recorded hash is never unpickled."""
    result = run_training(small_store, config(), progress=False)
    fits = result.run_dir / "fits"
    stamps = {p.name: p.stat().st_mtime_ns for p in fits.glob("*.pkl")}
    (fits / "logistic__b2.json").unlink()
    run_training(small_store, config(), progress=False)
    changed = {p.name for p in fits.glob("*.pkl") if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {"logistic__b2.pkl"}
    with (fits / "lightgbm__b1.pkl").open("ab") as handle:
        handle.write(b"tampered")
    run = RunFolder.open(runs_root(small_store), result.run_id)
    with pytest.raises(StoreError, match="does not match its recorded hash"):
        run.fit_model("lightgbm__b1")
    (fits / "lightgbm__b1.json").unlink()  # the module's other tests refit it


def test_run_is_recorded_with_metrics_trades_and_report(small_store):
    """model_metrics holds every window and the pooled figures for the stack, each base
    model and each baseline (with intervals); signal_trades holds one row per stack
    signal of the test windows; report.md gives the verdict and the leakage audit."""
    result = run_training(small_store, config(), progress=False)
    con = store.connect(small_store, read_only=True)
    rows = con.execute(
        'SELECT DISTINCT "window", model FROM model_metrics WHERE run_id = ?', [result.run_id]
    ).fetchall()
    names = {
        r[0]
        for r in con.execute(
            "SELECT metric FROM model_metrics WHERE run_id = ? AND model = 'stack' "
            "AND \"window\" = 'pooled'",
            [result.run_id],
        ).fetchall()
    }
    trades = con.execute(
        "SELECT signal, count(*) FROM signal_trades WHERE run_id = ? GROUP BY signal",
        [result.run_id],
    ).fetchall()
    con.close()
    assert {w for w, _ in rows} == {"1", "2", "3", "4", "pooled", "live"}  # live: its rule
    baselines = {
        *("majority", "prior", "every_day", "volatility", "momentum", "best_base"),
        "volatility_model",
        "hold_universe",
    }
    assert {m for _, m in rows} == {
        *MODELS,
        "stack",
        "audit_random_split",
        *(f"baseline_{b}" for b in baselines),
    }
    assert {
        "call_precision",
        "call_coverage",
        "put_precision",
        "put_coverage",
        "log_loss",
        "call_mean_exit_return",
        "put_mean_exit_return",
        "top10_win_precision",
        "top10_loss_precision",
        "call_precision_ci_low",
        "call_precision_ci_high",
        "rank_ic",
        "rank_ic_t",
        "top_minus_bottom",
        "top10_win_precision_daily",
    } <= names
    # Recorded trades are the placed ones: at most one position per stock, so no more
    # than the signals and exactly the count the pooled figures report.
    signalled = sum(int(np.sum(w.signals != 0)) for w in result.windows)
    placed = sum(result.metrics["stack"].get(f"{s}_placed_trades", 0) for s in ("call", "put"))
    assert 0 < sum(n for _, n in trades) == placed <= signalled
    report = result.report.read_text()
    assert "## Trade it or not" in report and "random 80/20 row split" in report
    assert report.index("## Trade it or not") < report.index("## Skill against the baselines")
    assert "implied volatility is taken equal to realized" in report


def test_nothing_to_train_is_one_line(tmp_path):
    """An empty store: one clear line and exit status 3."""
    db = tmp_path / "empty.duckdb"
    store.connect(db).close()
    with pytest.raises(NothingToDoError):
        run_training(db, config(), progress=False)
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

    result = run_training(small_store, config(), progress=False)
    frame = latest_signals(small_store, result.run_id).frame
    assert set(frame["profile"]) == {"swing"}
    called = frame.filter(pl.col("signal") != "HOLD")
    assert called["threshold"].null_count() == 0
    assert (frame.filter(pl.col("signal") == "HOLD")["threshold"].is_nan()).all()
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
        [
            *(sys.executable, "-m", "stockml.cli", "train", "--db", str(db)),
            *("--models", models, "--windows", "4"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    done: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = [p for p in db.parent.glob("runs/*/fits/*.json") if ".tmp." not in p.name]
        if len(done) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, Ray's raylet and its workers
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    finished = {  # each fit's manifest (an atomic write's temporary file is not one)
        p.with_suffix(".pkl"): p.with_suffix(".pkl").stat().st_mtime_ns
        for p in db.parent.glob("runs/*/fits/*.json")
        if ".tmp." not in p.name
    }
    assert 2 <= len(finished) < 18
    result = run_training(db, config(models.split(",")), progress=False)
    for path, stamp in finished.items():
        assert path.stat().st_mtime_ns == stamp, f"{path.name} was refitted"
    # per model: 4 inner blocks x 3 tuning candidates (default, regularised, unweighted),
    # 4 window blocks and the live fit
    assert len(list((result.run_dir / "fits").glob("*.json"))) == len(MODELS) * FITS_PER_MODEL
    assert result.report.exists() and "stack" in result.metrics


def test_serial_baseline_fits_exactly_what_ray_fits(small_store):
    """The benchmark's serial baseline is the same work: every checkpointed prediction and
    the stack's test probabilities are identical to the Ray run's."""
    db = store_copy(small_store, "serial")
    parallel = run_training(db, config(), progress=False)  # by Ray, now or resumed
    by_ray = fit_outputs(parallel.run_dir)
    stack_by_ray = np.load(parallel.run_dir / "test_probabilities.npy")
    stamps = {p: p.stat().st_mtime_ns for p in (parallel.run_dir / "fits").glob("*.npy")}
    serial = run_training(db, config(), progress=False, fresh=True, serial=True)
    assert serial.run_id == parallel.run_id
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())  # refitted, not reused
    in_process = fit_outputs(serial.run_dir)
    assert by_ray.keys() == in_process.keys() and len(by_ray) == len(MODELS) * FITS_PER_MODEL
    for name in by_ray:
        np.testing.assert_array_equal(by_ray[name], in_process[name], err_msg=name)
    np.testing.assert_array_equal(stack_by_ray, np.load(serial.run_dir / "test_probabilities.npy"))


def test_options_profile_trains_and_signals_beside_swing(small_store):
    """`stockml train --profile options` and `stockml signals --profile options` work end to
    end; both profiles' runs sit side by side in training_runs and signals."""
    db = store_copy(small_store, "profiles")
    run_training(db, config(), progress=False)  # the module's swing run, resumed
    for command in (
        ["train", "--profile", "options", "--models", ",".join(MODELS), "--windows", "2"],
        ["signals", "--profile", "options"],
        ["signals", "--profile", "swing"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "stockml.cli", *command, "--db", str(db)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + proc.stderr  # tables go to the console (stderr)
    assert "BUY CALL" in shown and "walk-forward" in shown
    con = store.connect(db, read_only=True)
    runs = con.execute(
        "SELECT profile, any_value(params) FROM training_runs GROUP BY profile ORDER BY profile"
    ).fetchall()
    profiles = con.execute("SELECT DISTINCT profile FROM signals ORDER BY 1").fetchall()
    (options_run,) = con.execute(
        "SELECT run_id FROM training_runs WHERE profile = 'options'"
    ).fetchone()
    # issue 24 for the options profile too: a rule per side chosen in option terms, trades
    # as placed over its own 5-session hold, an equity curve per side
    rules = dict(
        con.execute(
            "SELECT metric, value FROM model_metrics WHERE run_id = ? AND model = 'stack' "
            "AND \"window\" = 'live' AND metric LIKE '%_rule_on'",
            [options_run],
        ).fetchall()
    )
    held = con.execute(
        "SELECT signal, max(days_held), bool_and(entry_date > date), count(*) "
        "FROM signal_trades WHERE run_id = ? GROUP BY signal",
        [options_run],
    ).fetchall()
    notes = dict(
        con.execute(
            "SELECT note, text FROM run_notes WHERE run_id = ? AND note LIKE 'rule.live.%'",
            [options_run],
        ).fetchall()
    )
    sides = con.execute(
        "SELECT DISTINCT side FROM equity_curves WHERE run_id = ? AND model = 'stack' ORDER BY 1",
        [options_run],
    ).fetchall()
    con.close()
    # (the copied store may hold earlier swing runs of this module too)
    assert [r[0] for r in runs] == ["options", "swing"] and '"windows": 2' in runs[0][1]
    assert [p[0] for p in profiles] == ["options", "swing"]
    assert set(rules) == {"call_rule_on", "put_rule_on"}
    for signal, longest, after, _ in held:  # entered after the signal day, 5 sessions
        assert longest <= 5 and after, signal
    for side, name in (("call", "BUY CALL"), ("put", "BUY PUT")):
        off = notes[f"rule.live.{side}"].startswith(f"no {name} rule earned its place on ")
        assert off == (rules[f"{side}_rule_on"] == 0), notes
    assert sides == [("call",), ("put",)]


def test_a_store_of_the_previous_schema_is_migrated(tmp_path):
    """model_metrics without "window" and signals without threshold/profile (the previous
    release's shapes) are brought to the new schema on connect, old rows kept as pooled."""
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE model_metrics (run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, "
        "metric VARCHAR NOT NULL, value DOUBLE, PRIMARY KEY (run_id, model, metric)); "
        "INSERT INTO model_metrics VALUES ('r', 'stack', 'accuracy', 0.53); "
        "CREATE TABLE signals (run_id VARCHAR NOT NULL, symbol VARCHAR NOT NULL, "
        "date DATE NOT NULL, signal VARCHAR NOT NULL, p_win DOUBLE, p_timeout DOUBLE, "
        "p_loss DOUBLE, PRIMARY KEY (run_id, symbol, date)); "
        "INSERT INTO signals VALUES ('r', 'AAPL', '2021-04-20', 'HOLD', 0.2, 0.5, 0.3)"
    )
    con.close()
    con = store.connect(db)
    metrics = con.execute('SELECT "window", model, metric, value FROM model_metrics').fetchall()
    signals = con.execute("SELECT symbol, threshold, profile FROM signals").fetchall()
    con.close()
    assert metrics == [("pooled", "stack", "accuracy", 0.53)]
    assert signals == [("AAPL", None, None)]


def test_ablation_runs_every_variant_and_reports_one_table(small_store):
    """`stockml train --ablation`: four runs (catalog only; + context; + weights; final),
    each its own run, one table in the final report and in model_metrics."""
    import json
    import shutil

    from training.ablation import VARIANTS, run_ablation

    db = small_store.parent / "ablation" / "s.duckdb"
    db.parent.mkdir(exist_ok=True)
    shutil.copy(small_store, db)
    runs = run_ablation(db, config(["logistic"], windows=1), progress=False)
    assert [label for label, _ in runs] == [label for label, _ in VARIANTS]
    assert len({r.run_id for _, r in runs}) == 4
    con = store.connect(db, read_only=True)
    try:
        params = {
            run_id: json.loads(p)
            for run_id, p in con.execute("SELECT run_id, params FROM training_runs").fetchall()
        }
        rows = con.execute(
            "SELECT DISTINCT model FROM model_metrics WHERE run_id = ? AND model LIKE 'ablation:%'",
            [runs[-1][1].run_id],
        ).fetchall()
    finally:
        con.close()
    for (_, result), (_, recipe) in zip(runs, VARIANTS, strict=True):
        assert {k: params[result.run_id][k] for k in recipe.params()} == recipe.params()
    assert len(rows) == 7  # four variants and three baselines
    report = runs[-1][1].report.read_text()
    assert "## Ablation" in report and "catalog features only" in report
    assert "## What the stack learns from" in report and "Recipe: catalog features" in report
    assert "labelled stock-days of 12 symbols" in report  # all of them: no sample asked


def test_a_long_history_trains_on_yearly_windows_with_rank_ic_stored(sp500_bars, tmp_path):
    """Six real stocks from 2006: labels from 2007, so 2010 .. 2021 are yearly windows
    (12, the last partial), each named by its year; every window and the pooled rows store
    the daily rank IC with its Newey-West t for the stack, the base model and the ranking
    baselines, and the report tabulates them."""
    from datetime import date

    from tests.conftest import prices_store
    from training.config import Recipe

    db = prices_store(tmp_path / "long.duckdb", sp500_bars, 6, date(2006, 1, 1))
    result = run_training(
        db, config(["logistic"], windows=None, recipe=Recipe(tune=False)), progress=False
    )
    names = [w.name for w in result.windows]
    assert names == [str(y) for y in range(2010, 2022)]
    con = store.connect(db, read_only=True)
    rows = con.execute(
        'SELECT "window", model, metric FROM model_metrics WHERE run_id = ? '
        "AND metric IN ('rank_ic', 'rank_ic_t')",
        [result.run_id],
    ).fetchall()
    con.close()
    for model in ("stack", "logistic", "baseline_volatility", "baseline_volatility_model"):
        for window in [*names, "pooled"]:
            assert {(window, model, "rank_ic"), (window, model, "rank_ic_t")} <= set(rows)
    report = result.report.read_text()
    assert "12 yearly test windows (2010 .. 2021" in report and "## Ranking skill" in report
    assert (result.run_dir / "yearly.png").exists()
