"""Hyperparameters chosen on the training period: a small fixed grid per base model.

Each base model has its default settings (training/models.py), one alternative more
strongly regularised (the measured signal is weak: bigger models fit noise) and, when the
run weights rows by label uniqueness (training/weights.py), the default without weights:
López de Prado's weights fix the over-counting of overlapping labels but also shrink the
effective sample, and which matters more is an empirical question per model (on the 82
real stocks the weighted stack's walk-forward log loss was worse: 1.043 against 0.993).
Every candidate is fitted on the inner walk-forward blocks (the days before the first test
window), and the one with the lowest forward out-of-fold log loss on the rows whose labels
end before the first test window is used for every test window and the live model. The
inner-block fits of the default are the ones the run makes anyway, so tuning costs one
extra fit per inner block per alternative, and it never sees a test window (its choice is
made before the first).

The grid's alternatives are data beside the defaults (`training.models.ALTERNATIVES`),
which a run's TrainConfig copies (`TrainConfig.candidates` lists a model's candidates in
order), so a changed grid is a new run. A grid, not a search: with 2 cores and a few
minutes for the whole run, eight models times two alternatives is what fits in the budget;
the report prints every candidate's log loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.metrics import log_loss3


def describe(candidate: Any, weighted_run: bool) -> str:
    """'default', 'no weights' or the overrides as k=v, for the report. `candidate` is a
    `training.config.Candidate` of a run that weights its rows (`weighted_run`) or not."""
    if candidate.overrides:
        return ", ".join(f"{k}={v}" for k, v in candidate.overrides)
    return "no weights" if weighted_run and not candidate.weighted else "default"


def choose(
    predictions: dict[int, np.ndarray], y: np.ndarray, rows: np.ndarray
) -> tuple[int, dict[int, float]]:
    """The candidate with the lowest log loss on `rows` of its (n, 3) out-of-fold
    predictions (NaN where not predicted; `rows` must all be predicted). Ties go to the
    default. Returns (index, {index: log loss})."""
    scores = {i: log_loss3(y[rows], p[rows]) for i, p in predictions.items()}
    best = min(sorted(scores), key=lambda i: (round(scores[i], 6), i))
    return best, scores


def choose_settings(config, y: np.ndarray, lay, day_index: np.ndarray, run) -> dict[str, dict]:
    """Per model of `config` (a TrainConfig), the candidate whose inner-block fits (the
    tuning jobs, finished and recorded in the RunFolder `run`) have the lowest forward
    out-of-fold log loss on the rows whose labels end before the first test window.
    Returns model -> {"chosen": index, "candidates": [description], "scores": {index: log
    loss}}."""
    from training.folds import Fold, block_job
    from training.walkforward import meta_rows

    rows = meta_rows(lay, day_index, lay.first_window)
    out = {}
    for model in config.model_names:
        grid = config.candidates(model)
        scored = {}
        for i in range(len(grid)):
            proba = np.full((len(y), 3), np.nan)
            for block in range(1, lay.first_window):
                job = block_job(config, lay, day_index, model, Fold(block, i))
                proba[job.predict_rows] = run.fit_predictions(job.name)
            scored[i] = proba
        chosen, scores = choose(scored, y, rows)
        out[model] = {
            "chosen": chosen,
            "candidates": [describe(c, config.recipe.weights) for c in grid],
            "scores": scores,
        }
    return out
