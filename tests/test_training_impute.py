"""The median imputer every imputing base model uses: scikit-learn's median imputation,
value for value, without its masked copy of the matrix (training/impute.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.impute import SimpleImputer

from training.impute import MedianImputer


def matrix(dtype, rows=1001, seed=3):
    """Columns with scattered NaN, a leading warm-up run of NaN, one all-NaN column and one
    complete; an odd and an even count of values among them (the median's two cases)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 6)).astype(dtype) * 10
    x[rng.random(rows) < 0.2, 0] = np.nan
    x[:250, 1] = np.nan
    x[:, 2] = np.nan
    x[:1, 4] = np.nan  # 1000 values left: an even count
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_medians_and_the_filled_matrix_equal_scikit_learns(dtype):
    x = matrix(dtype)
    ours = MedianImputer().fit(x)
    theirs = SimpleImputer(strategy="median", keep_empty_features=True).fit(x)
    assert ours.statistics_.dtype == x.dtype
    np.testing.assert_array_equal(ours.statistics_, theirs.statistics_.astype(dtype))
    assert ours.statistics_[2] == 0.0  # a column without a value imputes 0, as sklearn's
    later = matrix(dtype, rows=300, seed=4)  # other rows: the training medians fill them
    filled = ours.transform(later)
    np.testing.assert_array_equal(filled, theirs.transform(later))
    assert not np.isnan(filled).any()
    assert np.isnan(later).any(), "the input was not modified in place"


def test_a_matrix_without_nan_passes_through_uncopied():
    x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    imputer = MedianImputer().fit(x)
    assert imputer.transform(x) is x
    np.testing.assert_array_equal(imputer.statistics_, np.median(x, axis=0))


def test_a_fitted_imputer_pickles_and_refuses_another_column_count():
    imputer = pickle.loads(pickle.dumps(MedianImputer().fit(matrix(np.float32))))
    with pytest.raises(ValueError, match="features"):
        imputer.transform(np.zeros((2, 5), dtype=np.float32))
