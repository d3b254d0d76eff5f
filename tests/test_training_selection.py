"""Model choice on the training period: ensemble selection of base models (training/
stacking.py) and the tuning grid's choice (training/tuning.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import TrainConfig
from training.folds import Fold
from training.models import ALTERNATIVES
from training.rules import RuleSetup
from training.stacking import select_ensemble
from training.tuning import choose


def synthetic(n_days: int = 300, per_day: int = 20, seed: int = 0):
    """Labels, and three 'base models': A knows something, B is noise, C is A again."""
    rng = np.random.default_rng(seed)
    day_index = np.repeat(np.arange(n_days), per_day)
    n = len(day_index)
    signal = rng.normal(size=n)
    y = np.where(signal + rng.normal(scale=1.0, size=n) > 0.6, 1, 0)
    y = np.where(signal + rng.normal(scale=1.0, size=n) < -0.6, -1, y)
    logits = np.stack([-signal, np.zeros(n), signal], axis=1)
    a = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    b = rng.dirichlet([5, 5, 5], size=n)
    oof = np.hstack([a, b, a])
    return oof, y, day_index


def test_selection_weights_skill_and_explains_it():
    """The informative model (or its copy) carries the weight and lowers the log loss far
    below the class prior; the noise model is not read, and the reasons say so."""
    oof, y, _ = synthetic()
    rows = np.arange(100, len(y))
    ensemble, selection = select_ensemble(oof, y, rows)
    assert 1 not in selection.weights and set(selection.reads()) <= {0, 2}
    assert np.isclose(sum(selection.weights.values()), 1.0)
    assert selection.path[-1] < selection.prior - 0.05
    assert selection.path[-1] <= min(selection.alone.values()) + 1e-12
    assert selection.path[-1] == min(selection.path)  # the best prefix of the picks
    reasons = selection.reasons(["a", "b", "c"])
    assert reasons["b"].startswith("not read")
    assert sum(r.startswith("weight") for r in reasons.values()) == len(selection.weights)
    assert "class prior" in reasons["stack"]
    assert selection.named_weights(["a", "b", "c"]).keys() <= {"a", "c"}
    # the fitted ensemble reads all three; restricted to the read ones it predicts the same
    reads = selection.reads()
    cols = np.concatenate([np.arange(3 * j, 3 * j + 3) for j in reads])
    np.testing.assert_allclose(
        ensemble.restricted(reads).predict_proba(oof[:, cols]), ensemble.predict_proba(oof)
    )


def test_selection_reads_at_least_one_model_even_without_skill():
    rng = np.random.default_rng(1)
    y = rng.integers(-1, 2, 2000)
    oof = rng.dirichlet([5, 5, 5], size=(len(y), 2)).reshape(len(y), 6)
    _, selection = select_ensemble(oof, y, np.arange(len(y)))
    assert len(selection.reads()) >= 1 and len(selection.picks) >= 1


def test_tuning_chooses_the_lower_log_loss_and_the_default_on_a_tie():
    y = np.array([1, 0, -1, 1])
    good = np.tile([0.2, 0.3, 0.5], (4, 1))
    bad = np.tile([0.6, 0.2, 0.2], (4, 1))
    assert choose({0: bad, 1: good}, y, np.arange(4))[0] == 1
    assert choose({0: good, 1: bad}, y, np.arange(4))[0] == 0
    assert choose({0: good, 1: good.copy()}, y, np.arange(4))[0] == 0


@pytest.mark.parametrize("model", sorted(ALTERNATIVES))
def test_every_grid_candidate_builds_and_fits(model):
    from training.models import BASE_MODELS, fit_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 5)), rng.integers(-1, 2, 600)
    config = TrainConfig.create(models=[model])
    for i, candidate in enumerate(config.candidates(model)):
        built = BASE_MODELS[model](1, 7, **config.spec(model).build_settings(candidate))
        params = built.get_params(deep=True)
        for key, value in candidate.overrides:  # the override reached the learner
            assert any(
                (k == key or k.endswith(f"__{key}")) and v == value for k, v in params.items()
            ), key
        fitted = fit_model(built, x, y)
        assert fitted.predict_proba(x[:3]).shape == (3, 3)
        assert Fold(3, i).name == ("b3" if i == 0 else f"b3@t{i}")


def test_ensemble_selection_weights_skill_and_drops_noise():
    """Greedy picks with replacement (Caruana et al. 2004): the informative model (or its
    copy) carries the weight, the noise model none; the mean it predicts is the weighted
    mean of the inputs; a restriction to the weighted models predicts the same."""
    from training.stacking import EnsembleSelection

    oof, y, _ = synthetic(seed=2)
    model = EnsembleSelection().fit(oof, y)
    w = model.weights_
    assert w.shape == (3,) and np.isclose(w.sum(), 1.0)
    assert w[1] == 0 and w[0] + w[2] == 1.0
    expected = sum(w[j] * oof[:, 3 * j : 3 * j + 3] for j in range(3))
    np.testing.assert_allclose(model.predict_proba(oof), expected)
    keep = [j for j in range(3) if w[j] > 0]
    cols = np.concatenate([np.arange(3 * j, 3 * j + 3) for j in keep])
    np.testing.assert_allclose(model.restricted(keep).predict_proba(oof[:, cols]), expected)
    with pytest.raises(ValueError, match="missing"):
        model.restricted([1])


def test_ensemble_selection_mixes_two_models_that_err_apart():
    """Two models each confidently right on its half of the rows and uniform on the other
    half: the greedy path takes both (their mean beats either alone), weight 0.5 each."""
    from training.stacking import EnsembleSelection

    y = np.array([1, -1] * 50)
    good, bad = np.array([0.05, 0.05, 0.9]), np.array([0.9, 0.05, 0.05])
    a = np.where((np.arange(100) < 50)[:, None], np.where((y == 1)[:, None], good, bad), 1 / 3)
    b = np.where((np.arange(100) >= 50)[:, None], np.where((y == 1)[:, None], good, bad), 1 / 3)
    model = EnsembleSelection().fit(np.hstack([a, b]), y)
    np.testing.assert_allclose(model.weights_, [0.5, 0.5])


def test_the_mean_survives_a_regime_flip_the_meta_learner_does_not():
    """Why the final stack is a mean (training/stacking.py): fitted where model A is right,
    scored where the relation flips, the mean's log loss stays at most the weighted mean of
    what it reads (log loss is convex), while the learned meta-learner, which sharpened A,
    loses more than that."""
    from training.metrics import log_loss3
    from training.models import META
    from training.stacking import EnsembleSelection

    oof, y, day_index = synthetic(seed=4)
    fit, later = day_index < 200, day_index >= 200
    flipped = np.where(later, -y, y)
    ensemble = EnsembleSelection().fit(oof[fit], flipped[fit])
    meta = META(1, 7).fit(oof[fit], flipped[fit])
    mean_loss = log_loss3(flipped[later], ensemble.predict_proba(oof[later]))
    members = sum(
        w * log_loss3(flipped[later], oof[later, 3 * j : 3 * j + 3])
        for j, w in enumerate(ensemble.weights_)
        if w > 0
    )
    assert mean_loss <= members + 1e-9
    assert log_loss3(flipped[later], meta.predict_proba(oof[later])) > mean_loss


def flat_book(day_index: np.ndarray):
    """A TradeBook for synthetic rows: 20 symbols a day, each trade one day long, net
    returns drawn around zero (the rule may be on or off; the stack's tests read neither)."""
    from backtest.execution import Outcomes
    from training.rules import TradeBook

    n = len(day_index)
    symbol = np.arange(n) % 20
    flat = symbol * 100_000 + day_index
    dates = (np.datetime64("2020-01-01") + day_index).astype("datetime64[D]")
    outcomes = Outcomes(
        flat + 1,
        flat + 2,
        dates + 1,
        dates + 2,
        np.ones(n),
        np.ones(n),
        np.zeros(n),
        np.ones(n, dtype=np.int64),
        np.zeros(n, dtype=bool),
    )
    net = np.random.default_rng(0).normal(0, 0.1, n)
    return TradeBook({1: net, -1: -net}, symbol, outcomes, {}, {}, None, flat)


def test_final_stack_is_the_selected_mean_uncalibrated_and_the_ablation_stack_is_not():
    """fit_stack: with selection, the window's combiner is the restricted weighted mean of
    the models ensemble selection weighted, fitted on the window's training rows only, and
    its probabilities are not recalibrated; without, the meta-learner reads every model."""
    from training.stacking import EnsembleSelection, fit_stack
    from training.walkforward import layout, meta_rows

    oof, y, day_index = synthetic(seed=5)
    lay = layout(np.unique(day_index), 5, windows=2, inner_blocks=4)
    block = lay.windows[-1]
    rows = meta_rows(lay, day_index, block)
    book, setup = flat_book(day_index), RuleSetup(min_trades=5)
    fitted = fit_stack(oof, y, day_index, rows, lay.horizon, 7, book, setup, "p", select=True)
    np.testing.assert_array_equal(fitted.rows, meta_rows(lay, day_index, block))
    assert day_index[fitted.rows].max() < lay.bounds[block]  # nothing from the window
    assert isinstance(fitted.combiner, EnsembleSelection)
    assert fitted.reads == fitted.selection.reads() and 1 not in fitted.reads
    assert np.isclose(fitted.combiner.weights_.sum(), 1.0)
    assert fitted.decision.calibration.calibrator is None
    assert "not recalibrated" in fitted.decision.calibration.reason
    plain = fit_stack(oof, y, day_index, rows, lay.horizon, 7, book, setup, "p", select=False)
    assert plain.selection is None and plain.reads == [0, 1, 2]
    assert not isinstance(plain.combiner, EnsembleSelection)


def test_ensemble_selection_keeps_three_classes_when_training_rows_lack_one():
    """Its input is three columns per model in CLASSES order; a fold without a loss must
    not shift what predict maps the columns to."""
    from stockml.defaults import CLASSES
    from training.stacking import EnsembleSelection

    oof, y, _ = synthetic(seed=6)
    rows = y != -1
    model = EnsembleSelection().fit(oof[rows], y[rows])
    np.testing.assert_array_equal(model.classes_, CLASSES)
    proba = model.predict_proba(oof)
    np.testing.assert_array_equal(model.predict(oof), CLASSES[proba.argmax(axis=1)])
