"""Model choice on the training period: forward selection of base models (training/
selection.py) and the tuning grid's choice (training/tuning.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.models import META
from training.selection import forward_select
from training.tuning import GRID, as_params, candidates, choose, tag


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


def test_forward_selection_keeps_skill_and_drops_noise_and_copies():
    oof, y, day_index = synthetic()
    rows = np.arange(len(y))
    selection = forward_select(lambda: META(1, 7), oof, y, day_index, rows, 5, 3)
    assert selection.kept == [0] or selection.kept == [2]  # A or its copy, once
    assert selection.path[1] < selection.path[0] - 0.05  # far better than the prior
    reasons = selection.reasons(["a", "b", "c"])
    assert "left out" in reasons["b"]
    assert sum("kept" in r for r in reasons.values()) == 1


def test_selection_keeps_at_least_one_model_even_without_skill():
    rng = np.random.default_rng(1)
    day_index = np.repeat(np.arange(200), 10)
    y = rng.integers(-1, 2, len(day_index))
    oof = rng.dirichlet([5, 5, 5], size=(len(y), 2)).reshape(len(y), 6)
    selection = forward_select(lambda: META(1, 7), oof, y, day_index, np.arange(len(y)), 5, 2)
    assert len(selection.kept) == 1


def test_tuning_chooses_the_lower_log_loss_and_the_default_on_a_tie():
    y = np.array([1, 0, -1, 1])
    good = np.tile([0.2, 0.3, 0.5], (4, 1))
    bad = np.tile([0.6, 0.2, 0.2], (4, 1))
    assert choose({0: bad, 1: good}, y, np.arange(4))[0] == 1
    assert choose({0: good, 1: bad}, y, np.arange(4))[0] == 0
    assert choose({0: good, 1: good.copy()}, y, np.arange(4))[0] == 0


@pytest.mark.parametrize("model", sorted(GRID))
def test_every_grid_candidate_builds_and_fits(model):
    from training.models import BASE_MODELS, fit_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 5)), rng.integers(-1, 2, 600)
    for i, overrides in enumerate(candidates(model)):
        built = BASE_MODELS[model](1, 7, **dict(as_params(overrides)))
        params = built.get_params(deep=True)
        for key, value in overrides.items():  # the override reached the learner
            assert any(
                (k == key or k.endswith(f"__{key}")) and v == value for k, v in params.items()
            ), key
        fitted = fit_model(built, x, y)
        assert fitted.predict_proba(x[:3]).shape == (3, 3)
        assert tag(i) == ("" if i == 0 else f"@t{i}")


def test_meta_learner_inputs_are_chosen_by_cross_fitted_log_loss():
    from training.selection import choose_inputs

    oof, y, day_index = synthetic(seed=3)
    rows = np.arange(len(y))
    inputs, scores = choose_inputs(
        lambda i: META(1, 7, inputs=i), oof[:, :3], y, day_index, rows, 5
    )
    assert set(scores) == {"proba", "log"} and all(np.isfinite(list(scores.values())))
    assert inputs == min(scores, key=scores.get)
    # A's probabilities are a softmax of the signal: their logs are linear in it, which
    # the logistic meta-learner fits exactly, so logs must win here.
    assert inputs == "log"
    with pytest.raises(ValueError, match="inputs"):
        META(1, 7, inputs="odds")


def test_ensemble_selection_weights_skill_and_drops_noise():
    """Greedy picks with replacement (Caruana et al. 2004): the informative model (or its
    copy) carries the weight, the noise model none; the mean it predicts is the weighted
    mean of the inputs; a restriction to the weighted models predicts the same."""
    from training.models import EnsembleSelection

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
    from training.models import EnsembleSelection

    y = np.array([1, -1] * 50)
    good, bad = np.array([0.05, 0.05, 0.9]), np.array([0.9, 0.05, 0.05])
    a = np.where((np.arange(100) < 50)[:, None], np.where((y == 1)[:, None], good, bad), 1 / 3)
    b = np.where((np.arange(100) >= 50)[:, None], np.where((y == 1)[:, None], good, bad), 1 / 3)
    model = EnsembleSelection().fit(np.hstack([a, b]), y)
    np.testing.assert_allclose(model.weights_, [0.5, 0.5])


def test_combiner_is_chosen_forward_on_the_last_training_block():
    """A meta-learner fitted on a period whose relation flips in the last block loses the
    forward check to ensemble selection (a mean cannot sharpen what it reads); with a
    stable relation it wins."""
    from training.models import EnsembleSelection
    from training.selection import choose_combiner, forward_holdout

    oof, y, day_index = synthetic(seed=4)
    rows = np.arange(len(y))
    fit_rows, valid_rows = forward_holdout(rows, day_index, 240, 226)
    assert day_index[fit_rows].max() < 226 and day_index[valid_rows].min() == 240
    stable, scores = choose_combiner(
        {"stack": (lambda: META(1, 7), oof[:, :3]), "ensemble": (EnsembleSelection, oof)},
        y,
        fit_rows,
        valid_rows,
    )
    assert stable == "stack" and scores["stack"] < scores["ensemble"]
    flipped = y.copy()
    flipped[valid_rows] = -flipped[valid_rows]  # the signal turns around in the last block
    choice, _ = choose_combiner(
        {"stack": (lambda: META(1, 7), oof[:, :3]), "ensemble": (EnsembleSelection, oof)},
        flipped,
        fit_rows,
        valid_rows,
    )
    assert choice == "ensemble"
