"""The fit jobs of a run: which model is fitted on which rows, with which settings.

A fold is a typed value, never a string parsed back: `Fold(block=j)` is fitted on the
days before walk-forward block j less the purge and predicts block j (and, with
`refit_every` k > 1, the k - 1 test windows after it, which get no fit of their own: the
fit they are predicted by ends before its own window, so before theirs); `Fold(block=None)`
is the live fit on every labelled day, predicting nothing; `candidate` is the index of the
model's tuning candidate (`TrainConfig.candidates`). `Fold.name` (`b3`, `b3@t1`, `live`)
names the checkpoint files and the `training_fits.fold` column.

Jobs of a run (training/walkforward.py draws the blocks):
- tuning: every candidate of every model on the inner blocks 1 .. first_window - 1;
- fits: per model, with its chosen candidate, one fit per inner block from 1 on, one per
  k-th test window (`served_blocks`) and the live fit.
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


def served_blocks(lay: Layout, refit_every: int = 1) -> dict[int, int]:
    """Each fitted block -> how many consecutive blocks its fit predicts: every inner block
    (1 .. first_window - 1) itself alone, then every `refit_every`-th test window the
    windows up to the next refit (fewer at the end)."""
    served = {block: 1 for block in range(1, lay.first_window)}
    windows = lay.windows
    for i in range(0, len(windows), refit_every):
        served[windows[i]] = len(windows[i : i + refit_every])
    return served


def block_job(
    config: TrainConfig,
    lay: Layout,
    day_index: np.ndarray,
    model: str,
    fold: Fold,
    blocks: int = 1,
) -> FitJob:
    """The job of `model` for `fold`: a block fit (days before the block, purged; predicts
    the block and the `blocks` - 1 after it) or the live fit (every row; predicts
    nothing)."""
    candidate = config.candidates(model)[fold.candidate]
    settings = tuple(sorted(config.spec(model).build_settings(candidate).items()))
    if fold.is_live:
        train, predict = np.arange(len(day_index)), np.arange(0)
    else:
        start, end = lay.bounds[fold.block], lay.bounds[fold.block + blocks]
        train = np.flatnonzero(day_index < lay.fit_end(fold.block))
        predict = np.flatnonzero((day_index >= start) & (day_index < end))
    return FitJob(model, fold, train, predict, settings, candidate.weighted)


def fit_jobs(
    config: TrainConfig,
    lay: Layout,
    day_index: np.ndarray,
    chosen: dict[str, int] | None = None,
) -> list[FitJob]:
    """Per model, with its chosen candidate (default: 0): the fits of `served_blocks` under
    the config's `refit_every`, and the live fit."""
    chosen = chosen or {}
    served = served_blocks(lay, config.refit_every)
    return [
        block_job(
            config, lay, day_index, name, Fold(block, chosen.get(name, 0)), served.get(block, 1)
        )
        for name in config.model_names
        for block in [*served, None]
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
