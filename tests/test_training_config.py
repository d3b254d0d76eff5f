"""The frozen TrainConfig names the run; the run folder's recorder binds every artifact to it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stockml.errors import InputError, StoreError
from training.config import Recipe, TrainConfig
from training.recorder import RunFolder, runs_root


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"models": ["logistic", "nope"]}, "unknown model nope"),
        ({"models": ["logistic", "logistic"]}, "named twice"),
        ({"models": []}, "at least one base model"),
        ({"settings": {"logistic": {"C_typo": 1.0}}}, "logistic has no setting C_typo"),
        ({"settings": {"svm": {"C": 1.0}}, "models": ["logistic"]}, "settings given for svm"),
        ({"windows": 0}, "windows"),
        ({"rules": "option"}, "rules"),
        ({"seed": -1}, "seed"),
        ({"max_samples": 0}, "max_samples"),
        ({"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_a_bad_config_is_refused_on_construction(fields, message):
    """Every field is validated when the config is built, with an InputError naming it."""
    fields.setdefault("models", ["logistic"])
    with pytest.raises(InputError, match=message):
        TrainConfig.create("swing", **fields)


def test_the_digest_follows_every_setting_and_the_code():
    """The same content gives the same digest; a model setting, the recipe, the windows or
    the code's version each give another; params are flat and carry the settings."""
    base = TrainConfig.create("swing", ["logistic", "lightgbm"])
    assert base.digest() == TrainConfig.create("swing", ["logistic", "lightgbm"]).digest()
    changed = [
        TrainConfig.create("swing", ["logistic", "lightgbm"], {"lightgbm": {"num_leaves": 31}}),
        base.replace(recipe=Recipe(tune=False)),
        base.replace(windows=2),
        base.replace(code=(*base.code, ("stockml", "9.9"))),
        TrainConfig.create("options", ["logistic", "lightgbm"]),
    ]
    digests = {base.digest(), *(c.digest() for c in changed)}
    assert len(digests) == 1 + len(changed)
    params = base.params()
    assert params["lightgbm.num_leaves"] == 15 and params["logistic.C"] == 0.01
    assert params["hold_days"] == 14 and params["profile"] == "swing"
    assert all(not isinstance(v, dict | list) for v in params.values())  # flat
    assert {"code.stockml", "code.source", "code.lightgbm"} <= set(params)


def quick(models=("logistic",), **settings) -> TrainConfig:
    return TrainConfig.create("swing", list(models), settings, windows=1, recipe=Recipe(tune=False))


@pytest.fixture(scope="module")
def store_copy(small_store, tmp_path_factory):
    db = tmp_path_factory.mktemp("config") / "s.duckdb"
    shutil.copy(small_store, db)
    return db


def test_a_changed_model_setting_is_a_new_run_with_fresh_fits(store_copy):
    """The defect: a changed model setting used to reuse the old checkpoints under the same
    run id. Now the same config resumes its own run (nothing refitted) and a changed
    setting is a new run id, fitted afresh into its own folder, the old one untouched."""
    from training.pipeline import run_training

    first = run_training(store_copy, quick(), progress=False, serial=True)
    fits = sorted(first.run_dir.glob("fits/*.pkl"))
    stamps = {p: p.stat().st_mtime_ns for p in fits}
    again = run_training(store_copy, quick(), progress=False, serial=True)
    assert again.run_id == first.run_id
    assert {p: p.stat().st_mtime_ns for p in fits} == stamps  # resumed: nothing refitted
    other = run_training(store_copy, quick(logistic={"C": 0.5}), progress=False, serial=True)
    assert other.run_id != first.run_id and other.run_dir != first.run_dir
    assert len(list(other.run_dir.glob("fits/*.pkl"))) == len(fits)
    assert {p: p.stat().st_mtime_ns for p in fits} == stamps  # the first run is untouched
    params = json.loads((other.run_dir / "params.json").read_text())
    assert (
        params["logistic.C"] == 0.5
        and params["config_digest"] == quick(logistic={"C": 0.5}).digest()
    )
    model = RunFolder.open(runs_root(store_copy), other.run_id).fit_model("logistic__live")
    assert model.steps[-1][1].C == 0.5  # the fit it reports is the fit it made


def test_a_resumed_run_counts_what_it_kept_against_the_fits_it_makes(store_copy, capsys):
    """Resuming a finished run whose tuning chose an alternative says every fit is done:
    the count used to be taken against the default candidate's fits, so it said fewer."""
    from training.pipeline import run_training

    # A default regularised to the prior: the tuning grid's alternative (C = 0.001) wins.
    config = TrainConfig.create("swing", ["logistic"], {"logistic": {"C": 1e-7}}, windows=1)
    first = run_training(store_copy, config, progress=False, serial=True)
    assert first.tuning["logistic"]["chosen"] == 1
    kept = [p for p in first.run_dir.glob("fits/*.json") if ".tmp." not in p.name]
    capsys.readouterr()
    run_training(store_copy, config, progress=True, serial=True)
    said = capsys.readouterr().err
    assert f"resuming run {first.run_id}: {len(kept)} of {len(kept)} fits done" in said, said


def test_a_changed_rule_is_a_new_run_that_refits_nothing(store_copy):
    """Rules and the traded universe are chosen after the fits: a run differing only in
    them has its own run id and folder but takes the earlier run's fits (the same files,
    manifests naming the new run), refits none, and predicts exactly what the earlier
    one's fits predicted."""
    from backtest.costs import TradeCosts
    from training.pipeline import run_training
    from training.rules import RuleSetup

    first = run_training(store_copy, quick(), progress=False, serial=True)
    fits = sorted(first.run_dir.glob("fits/*.pkl"))
    stamps = {p: p.stat().st_mtime_ns for p in fits}
    cheaper = quick().replace(rules=RuleSetup(costs=TradeCosts(option_spread=0.01)))
    assert cheaper.fit_digest() == quick().fit_digest() and cheaper.digest() != quick().digest()
    other = run_training(store_copy, cheaper, progress=False, serial=True)
    assert other.run_id != first.run_id
    taken = sorted(other.run_dir.glob("fits/*.pkl"))
    assert [p.name for p in taken] == [p.name for p in fits]
    assert all(a.stat().st_ino == b.stat().st_ino for a, b in zip(fits, taken, strict=True))
    assert {p: p.stat().st_mtime_ns for p in fits} == stamps  # nothing refitted
    manifest = json.loads((other.run_dir / "fits" / "logistic__live.json").read_text())
    assert manifest["run_id"] == other.run_id
    mine = RunFolder.open(runs_root(store_copy), other.run_id)
    theirs = RunFolder.open(runs_root(store_copy), first.run_id)
    assert np.array_equal(
        mine.fit_predictions(f"logistic__{fits[0].stem.split('__')[1]}"),
        theirs.fit_predictions(f"logistic__{fits[0].stem.split('__')[1]}"),
    )
    # a changed model setting is a different fit set: nothing to take
    assert quick(logistic={"C": 0.5}).fit_digest() != quick().fit_digest()


def test_a_model_swapped_between_runs_or_resigned_without_the_key_is_refused(store_copy):
    """signal_model.{pkl,json} copied from run B into run A's folder is refused when run A
    loads it (the manifest names B); a pickle whose manifest was recomputed without this
    machine's key is refused too; neither is unpickled."""
    from training.pipeline import run_training
    from training.signals import latest_signals

    a = run_training(store_copy, quick(), progress=False, serial=True)
    b = run_training(store_copy, quick(logistic={"C": 0.5}), progress=False, serial=True)
    for suffix in (".pkl", ".json"):
        shutil.copy(b.run_dir / f"signal_model{suffix}", a.run_dir / f"signal_model{suffix}")
    with pytest.raises(StoreError, match=f"belongs to run {b.run_id}, not run {a.run_id}"):
        latest_signals(store_copy, a.run_id)
    # a forged manifest: the right run id and hashes, signed with another key
    import hashlib
    import hmac

    from stockml.files import sha256

    manifest_path = a.run_dir / "signal_model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["run_id"] = a.run_id
    manifest["files"] = {"signal_model.pkl": sha256(a.run_dir / "signal_model.pkl")}
    body = {k: manifest[k] for k in ("run_id", "config_digest", "files")}
    text = json.dumps(body, sort_keys=True).encode()
    manifest["signature"] = hmac.new(b"not the key", text, hashlib.sha256).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="not signed by this machine's key"):
        latest_signals(store_copy, a.run_id)
    with pytest.raises(InputError, match="not a run id"):
        RunFolder.open(runs_root(store_copy), "../runs")


def test_each_window_fits_exactly_its_fold_rows():
    """Refitting every window (`refit_every` 1): a block fit trains on the days before its
    block less the purge and predicts the block; the live fit trains on every row and
    predicts none; names are typed folds."""
    from training.folds import Fold, fit_jobs
    from training.walkforward import layout

    dates = np.repeat(np.arange(400), 3)
    lay = layout(dates, 14, windows=2, inner_blocks=4)
    day_index = np.searchsorted(lay.days, dates)
    jobs = fit_jobs(quick().replace(refit_every=1), lay, day_index)
    assert [j.fold for j in jobs] == [*(Fold(b) for b in range(1, lay.n_blocks)), Fold(None)]
    for job in jobs[:-1]:
        block = job.fold.block
        assert day_index[job.train_rows].max() < lay.bounds[block] - 14
        assert set(lay.block_of(day_index[job.predict_rows])) == {block}
    assert len(jobs[-1].train_rows) == len(dates) and len(jobs[-1].predict_rows) == 0
    assert [j.name for j in jobs][-2:] == [f"logistic__b{lay.n_blocks - 1}", "logistic__live"]


def test_refitting_every_second_window_predicts_each_test_row_once_from_its_past():
    """With refit_every 2 the inner blocks keep a fit each and every second test window
    gets one predicting it and the next window: every test row is predicted exactly once,
    by a fit whose days end a purge before the row's own window starts."""
    from training.folds import Fold, fit_jobs
    from training.walkforward import layout

    dates = np.repeat(np.arange(600), 3)
    lay = layout(dates, 14, windows=5, inner_blocks=4)
    day_index = np.searchsorted(lay.days, dates)
    jobs = fit_jobs(quick().replace(refit_every=2), lay, day_index)
    first, *_ = lay.windows
    refits = [first, first + 2, first + 4]
    assert [j.fold for j in jobs] == [
        *(Fold(b) for b in [*range(1, first), *refits]),
        Fold(None),
    ]
    predicted = np.concatenate([j.predict_rows for j in jobs])
    test_rows = np.flatnonzero(day_index >= lay.bounds[first])
    assert sorted(predicted[predicted >= test_rows[0]]) == list(test_rows)
    assert len(np.unique(predicted)) == len(predicted)
    for job in jobs[:-1]:
        blocks = set(lay.block_of(day_index[job.predict_rows]))
        assert min(blocks) == job.fold.block
        assert day_index[job.train_rows].max() < lay.bounds[job.fold.block] - 14
    assert {len(set(lay.block_of(day_index[j.predict_rows]))) for j in jobs[first - 1 : -1]} == {
        1,
        2,
    }
    # a different cadence is a different run
    assert quick().replace(refit_every=1).digest() != quick().replace(refit_every=2).digest()
