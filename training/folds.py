"""The fit jobs of a run: which model is fitted on which rows, with which settings.

A fold is a typed value, never a string parsed back: `Fold(block=j)` is fitted on the
days before walk-forward block j less the purge and predicts block j; `Fold(block=None)`
is the live fit on every labelled day, predicting nothing; `candidate` is the index of the
model's tuning candidate (`TrainConfig.candidates`). `Fold.name` (`b3`, `b3@t1`, `live`)
names the checkpoint files and the `training_fits.fold` column.

Jobs of a run (training/walkforward.py draws the blocks):
- tuning: every candidate of every model on the inner blocks 1 .. first_window - 1;
- fits: per model, with its chosen candidate, one fit per block from 1 on and the live fit.
A job both phases need (the default candidate's inner blocks) is the same job, so it runs
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # Ray workers import this module: they need no config
    from training.config import TrainConfig
    from training.walkforward import Layout


@dataclass(frozen=True)
class Fold:
    block: int | None  # None: the live fit on every labelled day
    candidate: int = 0  # the tuning candidate's index (0: the model's settings as they are)

    @property
    def is_live(self) -> bool:
        return self.block is None

    @property
    def name(self) -> str:
        base = "live" if self.block is None else f"b{self.block}"
        return base if self.candidate == 0 else f"{base}@t{self.candidate}"


@dataclass(frozen=True)
class FitJob:
    """One fit: `model` with factory `settings`, on `train_rows` of the run's sample matrix
    (weighted by label uniqueness when `weighted`), predicting `predict_rows` (may be
    empty). `name` names its checkpoint."""

    model: str
    fold: Fold
    train_rows: np.ndarray
    predict_rows: np.ndarray
    settings: tuple[tuple[str, Any], ...] = ()
    weighted: bool = False

    @property
    def name(self) -> str:
        return f"{self.model}__{self.fold.name}"


def block_job(
    config: TrainConfig, lay: Layout, day_index: np.ndarray, model: str, fold: Fold
) -> FitJob:
    """The job of `model` for `fold`: a block fit (days before the block, purged; predicts
    the block) or the live fit (every row; predicts nothing)."""
    candidate = config.candidates(model)[fold.candidate]
    settings = tuple(sorted(config.spec(model).build_settings(candidate).items()))
    if fold.is_live:
        train, predict = np.arange(len(day_index)), np.arange(0)
    else:
        start, end = lay.bounds[fold.block], lay.bounds[fold.block + 1]
        train = np.flatnonzero(day_index < lay.fit_end(fold.block))
        predict = np.flatnonzero((day_index >= start) & (day_index < end))
    return FitJob(model, fold, train, predict, settings, candidate.weighted)


def fit_jobs(
    config: TrainConfig,
    lay: Layout,
    day_index: np.ndarray,
    chosen: dict[str, int] | None = None,
) -> list[FitJob]:
    """Per model, with its chosen candidate (default: 0): one fit per block from 1 on and
    the live fit."""
    chosen = chosen or {}
    return [
        block_job(config, lay, day_index, name, Fold(block, chosen.get(name, 0)))
        for name in config.model_names
        for block in [*range(1, lay.n_blocks), None]
    ]


def tuning_jobs(config: TrainConfig, lay: Layout, day_index: np.ndarray) -> list[FitJob]:
    """Every candidate of every model on the inner blocks (before the first test window);
    none when the recipe does not tune."""
    if not config.recipe.tune:
        return []
    return [
        block_job(config, lay, day_index, name, Fold(block, i))
        for name in config.model_names
        for i in range(len(config.candidates(name)))
        for block in range(1, lay.first_window)
    ]
