"""The one owner of the predictions layout: m models' class probabilities side by side.

Every stack input, out-of-fold matrix and ensemble is an (n, 3 * m) float64 matrix whose
columns 3j, 3j + 1, 3j + 2 hold model j's probabilities of loss, timeout and win
(`stockml.defaults.CLASSES` order), models in the run's model order. Nothing else in
training/ computes a column index of that layout: it asks here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_CLASSES = 3


def empty(n_rows: int, n_models: int) -> np.ndarray:
    """(n_rows, 3 * n_models) of NaN: a matrix to fill model by model."""
    return np.full((n_rows, N_CLASSES * n_models), np.nan)


def n_models(matrix: np.ndarray) -> int:
    """How many models' probabilities `matrix` holds. Raises ValueError when its width is
    not a multiple of 3."""
    width = np.shape(matrix)[1]
    if width % N_CLASSES:
        raise ValueError(f"a predictions matrix has 3 columns per model, not {width} in all")
    return width // N_CLASSES


def columns(models: int | Sequence[int]) -> np.ndarray:
    """The column indices of model j (an int) or of the models `models` (in that order)."""
    if isinstance(models, int | np.integer):
        return np.arange(N_CLASSES * models, N_CLASSES * models + N_CLASSES)
    if len(models) == 0:
        return np.arange(0)
    return np.concatenate([columns(int(j)) for j in models])


def of_model(matrix: np.ndarray, j: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Model j's (len(rows), 3) probabilities (a view when `rows` is a slice)."""
    return matrix[rows, N_CLASSES * j : N_CLASSES * j + N_CLASSES]


def put(matrix: np.ndarray, j: int, rows: np.ndarray, proba: np.ndarray) -> None:
    """Write model j's (len(rows), 3) probabilities `proba` into `rows` of `matrix`."""
    matrix[rows, N_CLASSES * j : N_CLASSES * j + N_CLASSES] = proba


def side_by_side(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Models' (n, 3) probabilities, in the order given, as one (n, 3 * m) matrix."""
    return np.hstack([np.asarray(p, dtype=float) for p in probabilities])


def per_model(matrix: np.ndarray) -> np.ndarray:
    """The same numbers as (n, m, 3): model j's probabilities at [:, j, :]."""
    matrix = np.asarray(matrix, dtype=float)
    return matrix.reshape(len(matrix), n_models(matrix), N_CLASSES)
