"""Average uniqueness of overlapping labels (training/weights.py) against a brute force
count of concurrent labels, per López de Prado (2018) ch. 4."""

from __future__ import annotations

import numpy as np
import pytest

from training.weights import average_uniqueness, uniqueness_weights


def brute_force(symbols, day_index, exit_offset) -> np.ndarray:
    out = np.empty(len(symbols))
    lives = [
        set(range(d + 1, d + e + 1)) if e > 0 else {d}
        for d, e in zip(day_index, exit_offset, strict=True)
    ]
    for i in range(len(symbols)):
        same = [j for j in range(len(symbols)) if symbols[j] == symbols[i]]
        out[i] = np.mean([1.0 / sum(day in lives[j] for j in same) for day in sorted(lives[i])])
    return out


def test_two_overlapping_labels_share_their_common_day():
    u = average_uniqueness(np.array(["A", "A"]), np.array([0, 1]), np.array([2, 2]))
    # days 1, 2 and 2, 3: day 2 is shared -> (1 + 1/2) / 2 each
    assert u == pytest.approx([0.75, 0.75])


def test_other_stocks_do_not_count_as_concurrent():
    u = average_uniqueness(np.array(["A", "B"]), np.array([0, 0]), np.array([5, 5]))
    assert u == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_equals_brute_force_on_random_lives(seed):
    rng = np.random.default_rng(seed)
    n = 120
    symbols = rng.choice(np.array(["A", "B", "C"]), n)
    day_index = rng.integers(0, 60, n)
    exit_offset = rng.integers(0, 15, n)
    got = average_uniqueness(symbols, day_index, exit_offset)
    assert got == pytest.approx(brute_force(symbols, day_index, exit_offset), rel=1e-12)


def test_a_daily_14_day_label_weighs_about_one_fourteenth():
    days = np.arange(500)
    u = average_uniqueness(np.zeros(500), days, np.full(500, 14))
    assert np.median(u) == pytest.approx(1 / 14, rel=1e-9)
    w = uniqueness_weights(np.zeros(500), days, np.full(500, 14))
    assert w.mean() == pytest.approx(1.0)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="same length"):
        average_uniqueness(np.zeros(2), np.zeros(3, int), np.zeros(2, int))
    with pytest.raises(ValueError, match=">= 0"):
        average_uniqueness(np.zeros(1), np.zeros(1, int), np.array([-1]))


def test_with_labels_every_class_keeps_its_row_count_as_weight():
    """Stops and targets exit early (more unique), timeouts live the whole horizon: raw
    uniqueness would shift the class prior; per class it cannot."""
    rng = np.random.default_rng(3)
    n = 400
    labels = rng.choice([-1, 0, 1], n, p=[0.3, 0.5, 0.2])
    offsets = np.where(labels == 0, 14, rng.integers(1, 6, n))
    days = np.arange(n)
    raw = uniqueness_weights(np.zeros(n), days, offsets)
    assert raw[labels == 0].mean() < raw[labels != 0].mean()  # the tilt exists
    w = uniqueness_weights(np.zeros(n), days, offsets, labels)
    for c in (-1, 0, 1):
        assert w[labels == c].sum() == pytest.approx(np.sum(labels == c))
    # within a class the order of uniqueness is kept
    u = average_uniqueness(np.zeros(n), days, offsets)
    mask = labels == 1
    assert np.array_equal(np.argsort(w[mask], kind="stable"), np.argsort(u[mask], kind="stable"))


def test_the_unweighted_tuning_candidate_fits_without_weights():
    """A weighted run's last tuning candidate (`weighted=False`) fits exactly what an
    unweighted run fits; the default candidate does use the weights (its predictions
    differ). On random data with overlapping 14-day label lives."""
    from training.config import Candidate, Recipe, TrainConfig
    from training.folds import FitJob, Fold
    from training.ray_runner import fit_one

    unweighted = Candidate((), weighted=False)
    assert TrainConfig.create(models=["lightgbm"]).candidates("lightgbm")[-1] == unweighted
    plain = TrainConfig.create(models=["lightgbm"], recipe=Recipe(weights=False))
    assert all(c.overrides or not c.weighted for c in plain.candidates("lightgbm"))
    assert plain.candidates("lightgbm").count(unweighted) == 1  # only its default
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 5))
    y = rng.integers(-1, 2, size=n)
    symbols = np.repeat(np.arange(3), n // 3)
    days = np.tile(np.arange(n // 3), 3)
    offsets = rng.integers(1, 15, size=n)
    lives = np.column_stack([symbols, days, offsets, y]).astype(np.int64)
    rows = np.arange(n)

    def predict(weighted, with_lives):
        job = FitJob("logistic", Fold(1), rows[:400], rows[400:], (), weighted)
        return fit_one(job, x, y, 1, 0, lives if with_lives else None).proba

    unweighted = predict(False, with_lives=True)
    np.testing.assert_array_equal(unweighted, predict(True, with_lives=False))
    assert not np.allclose(predict(True, with_lives=True), unweighted)
