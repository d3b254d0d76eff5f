"""The stack as one estimator, the walk-forward layout, the decision rule's inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import check_estimator

from training.calibration import ClasswiseIsotonic, choose_calibration
from training.metrics import brier
from training.models import BASE_MODELS, META, LabelShift
from training.predictions import side_by_side as stack_input
from training.split import forward_blocks, split_by_date
from training.stacking import StackedModel
from training.walkforward import layout, meta_rows


def learnable(n: int, seed: int):
    """Three classes decided by two of twelve features; one row per 'day'."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12))
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, n)
    return x, np.where(score > 0.6, 1, np.where(score < -0.6, -1, 0))


def small_stack(**kwargs) -> StackedModel:
    return StackedModel(
        estimators=[
            ("logistic", BASE_MODELS["logistic"](1, 0)),
            ("lightgbm", BASE_MODELS["lightgbm"](1, 0)),
        ],
        final_estimator=META(1, 0),
        **kwargs,
    )


def test_stacked_model_clones_and_refits_to_the_same_predictions():
    """clone() gives an unfitted copy with the same parameters; fitting it on the same rows
    gives the same probabilities, which beat the majority class out of sample."""
    x, y = learnable(1500, 1)
    x_new, y_new = learnable(500, 2)
    first = small_stack(n_blocks=4, horizon=3).fit(x, y)
    copy = clone(first)
    assert not hasattr(copy, "estimators_") and copy.get_params()["n_blocks"] == 4
    second = copy.fit(x, y)
    np.testing.assert_array_equal(first.predict_proba(x_new), second.predict_proba(x_new))
    assert first.names_ == ["logistic", "lightgbm"] and list(first.classes_) == [-1, 0, 1]
    majority = max(np.mean(y_new == c) for c in (-1, 0, 1))
    assert np.mean(first.predict(x_new) == y_new) > majority + 0.1


def test_from_fitted_stacks_in_the_order_it_was_given():
    """A stack wrapped from fits made elsewhere predicts exactly what its meta-learner
    gives for the base probabilities side by side in the names' order."""
    x, y = learnable(1200, 3)
    bases = [(n, BASE_MODELS[n](1, 0).fit(x, y)) for n in ("logistic", "lightgbm")]
    z = stack_input([m.predict_proba(x) for _, m in bases])
    meta = META(1, 0).fit(z, y)
    model = StackedModel.from_fitted(bases, meta)
    np.testing.assert_array_equal(model.predict_proba(x), meta.predict_proba(z))
    swapped = StackedModel.from_fitted(bases[::-1], meta)
    assert not np.allclose(swapped.predict_proba(x), model.predict_proba(x))
    with pytest.raises(ValueError, match="expected 2"):
        model.predict_proba_from_base([bases[0][1].predict_proba(x)])


def test_label_shift_is_a_proper_meta_estimator():
    """LabelShift passes scikit-learn's estimator checks around a logistic regression and
    maps XGBoost's 0..K-1 classes back to -1, 0, 1."""
    check_estimator(LabelShift(LogisticRegression(max_iter=200)))
    x, y = learnable(600, 4)
    model = BASE_MODELS["xgboost"](1, 0).fit(x, y)
    assert isinstance(model, LabelShift) and list(model.classes_) == [-1, 0, 1]
    assert set(model.predict(x)) <= {-1, 0, 1}


def test_forward_blocks_train_only_on_days_before_the_purge():
    """Every forward fold fits on days ending `horizon` days before the block it predicts."""
    dates = np.repeat(np.arange(100), 3)
    for fit, predict in forward_blocks(dates, 5, horizon=4):
        assert dates[fit].max() < dates[predict].min() - 4
        assert len(np.unique(dates[predict])) == 20


def test_one_window_tests_the_same_days_as_the_date_split():
    """--windows 1 is the single date split: same test days, same purge."""
    dates = np.repeat(np.arange(400), 2)
    lay = layout(dates, horizon=14, windows=1)
    split = split_by_date(dates, 14)
    np.testing.assert_array_equal(lay.days[lay.bounds[lay.first_window] :], split.test)
    np.testing.assert_array_equal(lay.days[: lay.fit_end(lay.first_window)], split.train)


def test_each_window_learns_only_from_days_purged_before_it():
    """Meta-learner rows of a window end `horizon` days before it; windows are consecutive
    and end at the last day; too few days is an error."""
    days = np.arange(500)
    lay = layout(days, horizon=14, windows=4)
    assert lay.windows == [5, 6, 7, 8] and lay.bounds[-1] == 500
    assert lay.bounds[5] == 400
    for block in lay.windows:
        rows = meta_rows(lay, days, block)
        assert rows.max() == lay.bounds[block] - 15 and rows.min() == lay.bounds[1]
    assert meta_rows(lay, days, None).max() == 499
    with pytest.raises(ValueError, match="too few"):
        layout(np.arange(30), horizon=14, windows=4)


def test_isotonic_calibration_is_kept_only_where_it_helps():
    """Badly scaled probabilities get calibrated (Brier falls); calibrated ones are kept."""
    rng = np.random.default_rng(5)
    n = 6000
    y = rng.choice([-1, 0, 1], size=n, p=[0.3, 0.5, 0.2])
    honest = np.tile([0.3, 0.5, 0.2], (n, 1))
    choice = choose_calibration(honest, y, np.arange(n) // 10, horizon=2)
    assert choice.calibrator is None
    onehot = (y[:, None] == np.array([-1, 0, 1])).astype(float)
    sharp = 0.5 * onehot + 0.5 * rng.dirichlet([1, 1, 1], n)  # informative, overconfident
    squashed = sharp**3 / (sharp**3).sum(axis=1, keepdims=True)
    choice = choose_calibration(squashed, y, np.arange(n) // 10, horizon=2)
    assert choice.calibrator is not None and choice.brier_calibrated < choice.brier_raw
    fixed = ClasswiseIsotonic().fit(squashed, y).transform(squashed)
    np.testing.assert_allclose(fixed.sum(axis=1), 1.0)
    assert brier(fixed, y).sum() < brier(squashed, y).sum()


def test_ensemble_selection_picks_what_the_full_mixtures_log_loss_picks():
    """The greedy search carries only the true class's probability; its picks and its
    path are those of `log_loss3` on the full (n, 3) running mean, to the last bit."""
    from stockml.defaults import CLASSES
    from training.metrics import log_loss3
    from training.stacking import EnsembleSelection

    rng = np.random.default_rng(11)
    n, m = 4_000, 6
    y = rng.choice(CLASSES, n, p=[0.3, 0.45, 0.25])
    p = rng.dirichlet([2, 3, 2], (n, m))
    p[:, 2] = p[:, 1]  # a copy adds nothing
    fitted = EnsembleSelection(steps=12).fit(p.reshape(n, 3 * m), y)
    total, path, picks = np.zeros((n, 3)), [], []
    for step in range(1, 13):
        losses = [log_loss3(y, (total + p[:, j]) / step) for j in range(m)]
        picks.append(int(np.argmin(losses)))
        path.append(losses[picks[-1]])
        total += p[:, picks[-1]]
    best = int(np.argmin(path))  # the first of the lowest, as the fit keeps it
    kept = len(fitted.picks_)
    assert fitted.path_ == path[:kept] and fitted.picks_ == picks[:kept]
    assert fitted.path_[-1] == path[best]
