"""The eight base models and the meta-learner: each learns a learnable problem."""

from __future__ import annotations

import numpy as np
import pytest

from training.models import BASE_MODELS, META


def learnable(n: int, seed: int):
    """Three classes decided by two of twelve features, with NaNs in the first rows
    like a feature's warm-up."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12))
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, n)
    y = np.where(score > 0.6, 1, np.where(score < -0.6, -1, 0))
    x[:20, 3] = np.nan
    return x, y


@pytest.mark.parametrize("name", [*BASE_MODELS, "meta"])
def test_model_beats_the_majority_class_out_of_sample(name):
    """Fitted on one sample, each model scores well above the majority class on another,
    with probabilities over the three classes (-1, 0, 1) that sum to one."""
    x, y = learnable(3000, 1)
    x_new, y_new = learnable(1000, 2)
    factory = META if name == "meta" else BASE_MODELS[name]
    model = factory(1, 0)
    if name == "meta":
        x, x_new = np.nan_to_num(x), np.nan_to_num(x_new)
    model.fit(x, y)
    proba = model.predict_proba(x_new)
    assert proba.shape == (1000, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = np.array([-1, 0, 1])[proba.argmax(axis=1)]
    majority = max(np.mean(y_new == c) for c in (-1, 0, 1))
    assert np.mean(predicted == y_new) > majority + 0.1
