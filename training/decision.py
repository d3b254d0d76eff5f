"""The decision rule: from a stack's probabilities to BUY CALL / BUY PUT / HOLD, chosen on
the training period, and the live signal model that carries it.

BUY CALL when p_win >= t_call, BUY PUT when p_loss >= t_put, the larger margin when both
(training/trades.py `decide`). The thresholds (and, for a meta-learner stack, an isotonic
calibration kept only where it helps) are chosen on cross-fitted probabilities of the
window's training rows: purged K-fold over the training days, so the rule is chosen on
probabilities the stack made for days it did not see (training/walkforward.py
`cross_fitted`). Never on a test window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from training.calibration import CalibrationChoice, choose_calibration, uncalibrated
from training.trades import CALL, HOLD, PUT, choose_thresholds, decide

ACTIONS = {CALL: "BUY CALL", PUT: "BUY PUT", HOLD: "HOLD"}


@dataclass
class Decision:
    """What one stack decided with: thresholds and calibration chosen on its training
    period (cross-fitted probabilities), and why."""

    t_call: float
    t_put: float
    calibration: CalibrationChoice
    call_reason: str
    put_reason: str


def decide_from(
    proba: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    horizon: int,
    coverage: tuple[float, float],
    calibrate: bool = True,
) -> Decision:
    """Calibration (when `calibrate`: isotonic, kept where it helps) and thresholds from
    out-of-sample probabilities `proba` (n, 3) of training rows with labels `y` (n,) on
    trading days `day_index` (n,); each side signals between coverage[0] and coverage[1]
    of the rows (training/trades.py `choose_thresholds`)."""
    if calibrate:
        calibration = choose_calibration(proba, y, day_index, horizon)
        if calibration.calibrator is not None:
            proba = calibration.calibrator.transform(proba)
    else:
        calibration = uncalibrated(proba, y, "the weighted mean's")
    call, put = choose_thresholds(proba, y, *coverage)
    return Decision(call.threshold, put.threshold, calibration, call.reason, put.reason)


def training_reference(x: np.ndarray) -> np.ndarray:
    """(n_features,) the median of each column of the training matrix `x` (n, n_features),
    ignoring NaN; NaN where a column has no value: `SignalModel.reference`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        return np.nanmedian(np.asarray(x, dtype=np.float64), axis=0)


@dataclass
class SignalModel:
    """What `stockml signals` scores with: the stack (training.stacking.StackedModel), an
    optional calibrator, the thresholds chosen on the training period, the input columns
    in order (catalog features, then context columns), and the training medians that
    explanations measure each feature's effect against. What its signals achieved in the
    walk-forward is recorded beside it (the run folder's track_record.json)."""

    stack: object
    t_call: float
    t_put: float
    calibrator: object | None = None
    columns: list[str] = field(default_factory=list)
    reference: np.ndarray | None = None

    def predict_proba(self, x) -> np.ndarray:
        proba = self.stack.predict_proba(x)
        return proba if self.calibrator is None else self.calibrator.transform(proba)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return decide(proba, self.t_call, self.t_put)
