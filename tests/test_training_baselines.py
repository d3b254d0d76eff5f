"""Model-free baselines: probability matrices in class order, rankings, top-decile precision."""

from __future__ import annotations

import numpy as np
import pytest

from features.catalog import FEATURES
from training.baselines import (
    BASELINE_FEATURES,
    baseline_scores,
    majority_proba,
    prior_proba,
    ranking_scores,
)
from training.metrics import evaluate, top_decile_precision


def test_majority_is_one_hot_on_the_most_common_training_class():
    """y_train with wins most common (3 of 6): every row is (0, 0, 1)."""
    got = majority_proba(np.array([1, 1, 1, 0, -1, -1]), 4)
    np.testing.assert_array_equal(got, np.tile([0.0, 0.0, 1.0], (4, 1)))


def test_majority_tie_goes_to_the_first_class_like_the_report():
    """Loss and win tied at 2: loss (column 0) wins, and the report agrees on accuracy."""
    y_train = np.array([-1, 1, -1, 1, 0])
    got = majority_proba(y_train, 3)
    np.testing.assert_array_equal(got, np.tile([1.0, 0.0, 0.0], (3, 1)))
    y_test = np.array([-1, 0, 1])
    report = evaluate(y_test, np.full((3, 3), 1 / 3), y_train)
    assert report["majority_baseline"] == np.mean(y_test == -1)


def test_prior_rows_are_the_training_class_frequencies():
    """y_train 1 loss, 1 timeout, 2 wins -> (.25, .25, .5) on every row, summing to 1."""
    got = prior_proba(np.array([-1, 0, 1, 1]), 2)
    np.testing.assert_allclose(got, [[0.25, 0.25, 0.5]] * 2)


@pytest.mark.parametrize("baseline", [majority_proba, prior_proba])
def test_probability_baselines_refuse_an_empty_training_period(baseline):
    """No training labels, no baseline."""
    with pytest.raises(ValueError, match="no training labels"):
        baseline(np.array([]), 3)


def test_ranking_scores_put_nan_last_and_flip_for_puts():
    """[.2, NaN, -.1]: calls rank .2 first; puts rank -.1 first; NaN is -inf both ways."""
    values = np.array([0.2, np.nan, -0.1])
    np.testing.assert_array_equal(ranking_scores(values), [0.2, -np.inf, -0.1])
    np.testing.assert_array_equal(ranking_scores(values, side=-1), [-0.2, -np.inf, 0.1])
    with pytest.raises(ValueError, match="side"):
        ranking_scores(values, side=0)


def test_top_decile_precision_takes_the_highest_tenth():
    """25 rows -> the top 2 scores (rows 24 and 23): hits True, False -> 0.5."""
    scores = np.arange(25.0)
    hit = np.zeros(25, bool)
    hit[24] = True
    assert top_decile_precision(scores, hit) == 0.5


def test_top_decile_precision_takes_at_least_one_row_and_breaks_ties_stably():
    """5 rows -> 1 row; all scores tied -> the first row; n = 0 -> NaN."""
    assert top_decile_precision(np.ones(5), np.array([1, 0, 0, 0, 0], bool)) == 1.0
    assert top_decile_precision(np.ones(5), np.array([0, 1, 1, 1, 1], bool)) == 0.0
    assert np.isnan(top_decile_precision(np.array([]), np.array([], bool)))
    with pytest.raises(ValueError, match="one value per row"):
        top_decile_precision(np.ones(3), np.ones(2, bool))


def test_top_decile_precision_matches_the_report_without_ties():
    """On distinct p_win the report's top10_win_precision and ours agree."""
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), 300)
    y = rng.integers(-1, 2, 300)
    report = evaluate(y, proba, y)
    assert top_decile_precision(proba[:, 2], y == 1) == report["top10_win_precision"]


def test_nan_features_never_enter_the_top_decile():
    """20 rows, 2 taken: a NaN row beats no row with a value."""
    values = np.r_[np.full(18, np.nan), 0.01, 0.02]
    hit = np.r_[np.ones(18, bool), True, True]
    assert top_decile_precision(ranking_scores(values), hit) == 1.0


def test_baseline_features_are_catalog_columns_with_the_stated_meaning():
    """natr_14 is the normalised ATR and ret_20 the 20-day rate of change in the catalog."""
    catalog = {f.name: f for f in FEATURES}
    assert catalog[BASELINE_FEATURES["baseline_volatility"]].formula.startswith("ATR(14) / close")
    momentum = catalog[BASELINE_FEATURES["baseline_momentum"]]
    assert momentum.formula == "close_t / close_(t-20) - 1"
    assert momentum.family == "momentum"


def test_baseline_scores_rank_every_baseline_column():
    """One score array per baseline name; a missing column is a KeyError naming it."""
    features = {"natr_14": np.array([1.0, np.nan]), "ret_20": np.array([0.1, -0.2])}
    got = baseline_scores(features, side=-1)
    np.testing.assert_array_equal(got["baseline_volatility"], [-1.0, -np.inf])
    np.testing.assert_array_equal(got["baseline_momentum"], [-0.1, 0.2])
    with pytest.raises(KeyError, match="ret_20"):
        baseline_scores({"natr_14": np.ones(2)})
