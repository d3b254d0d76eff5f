"""The decision rule: from a stack's probabilities to BUY CALL / BUY PUT / HOLD, chosen on
the training period, and the live signal model that carries it.

Each side's rule is a threshold on its edge (p_win - p_loss for a call) chosen by the mean
return after costs of the trades it would have placed on the training period, and a side
whose best rule loses money there is off (training/rules.py). The rule (and, for a
meta-learner stack, an isotonic calibration kept only where it helps) is chosen on
cross-fitted probabilities of the window's training rows: purged K-fold over the training
days, so the rule is chosen on probabilities the stack made for days it did not see
(training/walkforward.py `cross_fitted`). Never on a test window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from training.calibration import CalibrationChoice, choose_calibration, uncalibrated
from training.rules import Rule, RuleSetup, TradeBook, choose_rule
from training.trades import CALL, HOLD, PUT

ACTIONS = {CALL: "BUY CALL", PUT: "BUY PUT", HOLD: "HOLD"}


@dataclass
class Decision:
    """What one stack decided with: its rule and calibration, chosen on its training period
    (cross-fitted probabilities), and why (the thresholds: `rule.t_call`, `rule.t_put`)."""

    rule: Rule
    calibration: CalibrationChoice

    @property
    def call_reason(self) -> str:
        return self.rule.call.reason

    @property
    def put_reason(self) -> str:
        return self.rule.put.reason


def decide_from(
    proba: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    book: TradeBook,
    setup: RuleSetup,
    span: str,
    calibrate: bool = True,
) -> Decision:
    """Calibration (when `calibrate`: isotonic, kept where it helps) and the rule from
    out-of-sample probabilities `proba` (n, 3) of training `rows` (sample rows, date
    order) with labels `y` (n,) on trading days `day_index` (n,): training/rules.py
    `choose_rule` on the trades of `book`; `span` names the period in the rule's words."""
    if calibrate:
        calibration = choose_calibration(proba, y, day_index, horizon)
        if calibration.calibrator is not None:
            proba = calibration.calibrator.transform(proba)
    else:
        calibration = uncalibrated(proba, y, "the weighted mean's")
    return Decision(choose_rule(proba, rows, book, setup, span), calibration)


def training_reference(x: np.ndarray) -> np.ndarray:
    """(n_features,) the median of each column of the training matrix `x` (n, n_features),
    ignoring NaN; NaN where a column has no value: `SignalModel.reference`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        return np.nanmedian(np.asarray(x, dtype=np.float64), axis=0)


@dataclass
class SignalModel:
    """What `stockml signals` scores with: the stack (training.stacking.StackedModel), an
    optional calibrator, the rule chosen on the training period (a side may be off), the
    input columns in order (catalog features, then context columns), and the training
    medians that explanations measure each feature's effect against. What its signals
    achieved in the walk-forward is recorded beside it (the run folder's
    track_record.json)."""

    stack: object
    rule: Rule
    calibrator: object | None = None
    columns: list[str] = field(default_factory=list)
    reference: np.ndarray | None = None

    def predict_proba(self, x) -> np.ndarray:
        proba = self.stack.predict_proba(x)
        return proba if self.calibrator is None else self.calibrator.transform(proba)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return self.rule.decide(proba)
