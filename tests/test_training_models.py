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


@pytest.mark.parametrize("case", ["all classes", "a class never true", "a class never called"])
def test_evaluate_scores_are_sklearns(case):
    """`training.metrics.evaluate` computes its classification scores from one confusion
    matrix: the same numbers as sklearn's functions, bit for bit, also when a class is
    absent from the labels (balanced accuracy leaves it out) or never predicted."""
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    from stockml.defaults import CLASSES
    from training.metrics import evaluate

    rng = np.random.default_rng(3)
    y = rng.choice(CLASSES, 5_000, p=[0.3, 0.5, 0.2])
    proba = rng.dirichlet([1, 1, 1], 5_000)
    if case == "a class never true":
        y[y == 0] = 1
    if case == "a class never called":
        proba[:, 0] = 0.0
        proba /= proba.sum(axis=1, keepdims=True)
    out = evaluate(y, proba, y)
    predicted = CLASSES[proba.argmax(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, predicted)
    precision, recall, _, _ = precision_recall_fscore_support(
        y, predicted, labels=CLASSES, zero_division=0
    )
    assert out["accuracy"] == accuracy_score(y, predicted)
    assert out["balanced_accuracy"] == balanced
    assert out["macro_f1"] == f1_score(
        y, predicted, average="macro", labels=CLASSES, zero_division=0
    )
    names = ["loss", "timeout", "win"]
    assert [out[f"precision_{n}"] for n in names] == precision.tolist()
    assert [out[f"recall_{n}"] for n in names] == recall.tolist()
    assert sum(out[f"confusion_{a}_as_{b}"] for a in names for b in names) == len(y)


def test_the_audit_beside_the_stacking_returns_or_raises_what_it_would_inline():
    """`audit_beside` runs the leakage audit in a thread: its result is the inline
    audit's, and an error inside it is raised where the caller asks for the result."""
    from types import SimpleNamespace

    from training.audit import audit_beside, random_split_audit

    rng = np.random.default_rng(5)
    samples = SimpleNamespace(x=rng.normal(size=(600, 4)), y=rng.choice([-1, 0, 1], 600))
    assert audit_beside(samples, "logistic", 7)() == random_split_audit(samples, "logistic", 7)
    with pytest.raises(KeyError):
        audit_beside(samples, "no such model", 7)()
