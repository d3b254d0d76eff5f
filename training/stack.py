"""The stack as one scikit-learn estimator, and the signal model built on it.

`StackedModel` holds the fitted base models (`estimators_`, in a fixed order) and the
meta-learner (`final_estimator_`) that reads their probabilities side by side. It is the
only place that builds the meta-learner's input, so the pipeline, the report and
`stockml signals` cannot disagree on the order of the base models. The final estimator is
any classifier over that input: in the default recipe `training.models.EnsembleSelection`
(a weighted mean, training/selection.py), in the ablation's plain recipes a multinomial
logistic meta-learner.

It can be made two ways, with the same result for the same fits:
- `StackedModel(estimators, final_estimator).fit(x, y, dates=...)` does the whole procedure
  in this process (forward-chained out-of-fold predictions over date blocks, meta-learner on
  them, base models refitted on every row): what `clone` + `fit` needs;
- `StackedModel.from_fitted(...)` wraps fits the pipeline already made as Ray tasks.

`SignalModel` adds the decision rule: BUY CALL when p_win >= t_call, BUY PUT when
p_loss >= t_put, the larger margin when both (thresholds chosen on the training period).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from training.split import forward_blocks
from training.trades import CALL, HOLD, PUT, decide


def stack_input(probabilities: list[np.ndarray]) -> np.ndarray:
    """The meta-learner's input: base models' (n, 3) probabilities side by side, in the
    order given, as one (n, 3 * n_models) matrix."""
    return np.hstack(probabilities)


class StackedModel(ClassifierMixin, BaseEstimator):
    """Base models stacked by a meta-learner on their out-of-fold probabilities.

    Parameters: `estimators`, a list of (name, unfitted classifier) whose `predict_proba`
    columns follow `stockml.defaults.CLASSES`; `final_estimator`, the unfitted
    meta-learner; `n_blocks` and `horizon` (trading days a label looks ahead), used by
    `fit` to make the out-of-fold predictions honest on overlapping labels.

    Fitted attributes: `estimators_` (list of fitted base models, in `estimators` order),
    `names_`, `final_estimator_`, `classes_`.
    """

    def __init__(self, estimators=None, final_estimator=None, n_blocks: int = 5, horizon: int = 14):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.n_blocks = n_blocks
        self.horizon = horizon

    @classmethod
    def from_fitted(cls, estimators: list[tuple[str, object]], final_estimator) -> StackedModel:
        """Wrap base models and a meta-learner fitted elsewhere (the Ray pipeline)."""
        model = cls(estimators=[(n, e) for n, e in estimators], final_estimator=final_estimator)
        model.names_ = [n for n, _ in estimators]
        model.estimators_ = [e for _, e in estimators]
        model.final_estimator_ = final_estimator
        model.classes_ = np.asarray(final_estimator.classes_)
        return model

    def fit(self, x, y, dates=None):
        """Forward-chained out-of-fold probabilities over `n_blocks` date blocks (rows without
        one, the first block, do not train the meta-learner), the meta-learner on them, then
        every base model refitted on all rows. `dates`: one per row; row order if omitted."""
        x, y = np.asarray(x), np.asarray(y)
        dates = np.arange(len(y)) if dates is None else np.asarray(dates)
        names = [n for n, _ in self.estimators]
        oof = np.full((len(y), 3 * len(names)), np.nan)
        for fit_rows, predict_rows in forward_blocks(dates, self.n_blocks, self.horizon):
            for j, (_, base) in enumerate(self.estimators):
                fitted = clone(base).fit(x[fit_rows], y[fit_rows])
                oof[predict_rows, 3 * j : 3 * j + 3] = fitted.predict_proba(x[predict_rows])
        seen = ~np.isnan(oof).any(axis=1)
        if not seen.any():
            raise ValueError("too few dates for out-of-fold predictions: add rows or blocks")
        self.final_estimator_ = clone(self.final_estimator).fit(oof[seen], y[seen])
        self.estimators_ = [clone(base).fit(x, y) for _, base in self.estimators]
        self.names_ = names
        self.classes_ = np.asarray(self.final_estimator_.classes_)
        return self

    def base_probabilities(self, x) -> list[np.ndarray]:
        """Each base model's (n, 3) probabilities, in `names_` order."""
        check_is_fitted(self, "estimators_")
        return [e.predict_proba(x) for e in self.estimators_]

    def predict_proba(self, x) -> np.ndarray:
        """(n, 3) probabilities of loss, timeout, win (columns follow `classes_`)."""
        return self.final_estimator_.predict_proba(stack_input(self.base_probabilities(x)))

    def predict_proba_from_base(self, base: list[np.ndarray]) -> np.ndarray:
        """The same, from base probabilities already computed (in `names_` order)."""
        check_is_fitted(self, "final_estimator_")
        if len(base) != len(self.names_):
            raise ValueError(f"expected {len(self.names_)} base models' probabilities")
        return self.final_estimator_.predict_proba(stack_input(base))

    def predict(self, x) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


ACTIONS = {CALL: "BUY CALL", PUT: "BUY PUT", HOLD: "HOLD"}


def training_reference(x: np.ndarray) -> np.ndarray:
    """(n_features,) the median of each column of the training matrix `x` (n, n_features),
    ignoring NaN; NaN where a column has no value: `SignalModel.reference`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        return np.nanmedian(np.asarray(x, dtype=np.float64), axis=0)


@dataclass
class SignalModel:
    """What `stockml signals` scores with: the stack, an optional calibrator, the thresholds
    chosen on the training period, and what signals of each kind achieved in the
    walk-forward evaluation (for the user to read beside each new signal)."""

    stack: StackedModel
    t_call: float
    t_put: float
    calibrator: object | None = None
    track_record: dict[str, dict[str, float]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # input columns, in order (features
    # then context columns); empty: the 179 catalog features (models saved before context)
    reference: np.ndarray | None = None  # (n_features,) training medians: the baseline
    # stockml/web/explain.py measures each feature's effect against; None in older models

    def predict_proba(self, x) -> np.ndarray:
        proba = self.stack.predict_proba(x)
        return proba if self.calibrator is None else self.calibrator.transform(proba)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return decide(proba, self.t_call, self.t_put)
