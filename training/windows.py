"""Every test window's stack and the live signal model, from the fits a run recorded.

The forward out-of-fold matrix is assembled from the block fits' recorded predictions
(training/recorder.py); each test window's stack and rule are fitted on the rows of its own
training period (training/stacking.py `fit_stack`), saved as `meta__b<block>`, and predict
the window once. Then the live model: the same on every labelled day, reading the base
models' live fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stockml.progress import progress_bar
from training import predictions
from training.decision import Decision, SignalModel, training_reference
from training.stacking import StackedModel, fit_stack
from training.walkforward import meta_rows


@dataclass
class Window:
    """One test window: its rows, every model's probabilities, the stack's decisions."""

    number: int  # 1 .. K, in date order
    name: str  # its year ("2008"), or its number when the windows are equal
    rows: np.ndarray
    train_days: tuple[Any, Any]
    n_train: int
    proba: dict[str, np.ndarray]
    signals: np.ndarray
    decision: Decision
    kept: list[str] = field(default_factory=list)  # base models the stack reads
    selection: dict[str, str] = field(default_factory=dict)  # model -> why kept or not
    weights: dict[str, float] = field(default_factory=dict)  # model -> ensemble weight


def out_of_fold(run, jobs, n_rows: int, models: list[str]) -> np.ndarray:
    """(n_rows, 3 * len(models)): every block fit's recorded predictions of its block, NaN
    where no fit predicted a row (block 0)."""
    oof = predictions.empty(n_rows, len(models))
    for job in jobs:
        if not job.fold.is_live:
            predictions.put(
                oof, models.index(job.model), job.predict_rows, run.fit_predictions(job.name)
            )
    return oof


def stack_windows(
    samples,
    lay,
    day_index: np.ndarray,
    run,
    config,
    jobs: list,
    progress: bool,
    lives: np.ndarray | None = None,
    book=None,
) -> tuple[list[Window], SignalModel, np.ndarray]:
    """Every window's stack, its test probabilities and decisions; then the live signal
    model. `run` is the RunFolder, `config` the TrainConfig, `jobs` the run's fit jobs,
    `book` the trades every sample row would have placed (training/rules.py), which the
    rules are chosen on. Returns the windows, the live model and the forward out-of-fold
    matrix."""
    models = config.model_names
    oof = out_of_fold(run, jobs, len(samples.y), models)
    live_fits = {j.model: j.name for j in jobs if j.fold.is_live}
    select = config.recipe.select
    traded = (
        np.isin(samples.symbols, list(config.traded_symbols)) if config.traded_symbols else None
    )

    def stack_of(block: int | None):
        rows = meta_rows(lay, day_index, block)
        span = f"{samples.dates[rows[0]]} .. {samples.dates[rows[-1]]}"
        return fit_stack(
            oof,
            samples.y,
            day_index,
            rows,
            lay.horizon,
            config.seed,
            book,
            config.rules,
            span,
            lives,
            select,
        )

    windows = []
    with progress_bar("stack", len(lay.windows) + 1, progress) as bar:
        for block in lay.windows:
            fitted = stack_of(block)
            run.save_model(f"meta__b{block}", fitted.combiner)
            rows = np.flatnonzero(lay.block_of(day_index) == block)
            if traded is not None:  # the test rows of the traded universe only
                rows = rows[traded[rows]]
            proba = fitted.predict_proba(oof, rows)
            base = {m: predictions.of_model(oof, j, rows) for j, m in enumerate(models)}
            days = lay.days[: lay.fit_end(block)]
            decision = fitted.decision
            windows.append(
                Window(
                    lay.window_number(block),
                    lay.window_name(block),
                    rows,
                    (days[0], days[-1]),
                    len(fitted.rows),
                    {**base, "stack": proba},
                    decision.rule.decide(proba),
                    decision,
                    [models[j] for j in fitted.reads],
                    fitted.selection.reasons(models) if fitted.selection else {},
                    fitted.selection.named_weights(models) if fitted.selection else {},
                )
            )
            bar.advance(1, status=f"window {lay.window_name(block)}")
        fitted = stack_of(None)
        stack = StackedModel.from_fitted(
            [(models[j], run.fit_model(live_fits[models[j]])) for j in fitted.reads],
            fitted.combiner,
        )
        live = SignalModel(
            stack,
            fitted.decision.rule,
            fitted.decision.calibration.calibrator,
            columns=list(samples.columns),
            reference=training_reference(samples.x),
        )
        bar.advance(1, status="live model")
    return windows, live, oof
