"""Stacking: the stack as one scikit-learn estimator, ensemble selection, and the stack of
one window (or of the live model) fitted on its training period.

A window's stack is a weighted mean of base models' probabilities (`EnsembleSelection`;
Caruana, Niculescu-Mizil, Crew and Ksikes, "Ensemble selection from libraries of models",
ICML 2004), whose weights are counts of greedy picks on the window's training period: the
forward out-of-fold predictions of the rows whose labels end before the window
(`walkforward.meta_rows`). A model gets weight only when picking it lowered that log loss;
the others are still fitted and reported, not read. The test windows are never looked at.

Why a mean and not a learned meta-learner. A convex mixture's log loss is at most the
weighted mean of its members' (log loss is convex in the probabilities), so the stack can
never do worse than the models it reads do on average; a multinomial logistic
meta-learner can sharpen probabilities that a change of regime then turns wrong. Measured
on two development periods of the 82 real stocks, before the benchmark period was run
(`benchmarks/bench_skill.py --period dev1` and `dev2`, samples 2015-2017 and 2017-2019):
the previous recipe (forward selection for the meta-learner, then a forward check on the
last training block between it and this mean) lost 1.31 in the window after the December
2018 sell-off (January 2019's rebound), where the three models it read lost 0.97-0.99, and
the check did not catch it. Pooled over four test windows, the mean, not recalibrated
(training/calibration.py): 0.630 -> 0.620 (dev1), 0.940 -> 0.877 (dev2); then, run once on
the benchmark period, 0.988 -> 0.986 (benchmarks/RESULTS.md). Recipes without selection
(the ablation's first rows) stack with the meta-learner `training.models.META`.

`StackedModel` holds the fitted base models (`estimators_`, in a fixed order) and the
combiner (`final_estimator_`) that reads their probabilities side by side
(training/predictions.py owns that layout). It can be made two ways, with the same result
for the same fits: `StackedModel(estimators, final_estimator).fit(x, y, dates=...)` does
the whole procedure in this process (what `clone` + `fit` needs), and
`StackedModel.from_fitted(...)` wraps fits the pipeline already made as Ray tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from stockml.defaults import CLASSES
from training import predictions
from training.metrics import class_columns, log_loss3, true_class_log_loss
from training.split import forward_blocks


class EnsembleSelection(ClassifierMixin, BaseEstimator):
    """Ensemble selection (Caruana et al. 2004; AutoGluon's final weighted ensemble): a
    weighted mean of the base models' probabilities whose weights are counts of greedy
    picks.

    Input: (n, 3 * m) probabilities of m models side by side (training/predictions.py);
    output (n, 3). `fit` starts from the single model with the lowest log loss on (x, y),
    then `steps` times adds, with replacement, the model whose inclusion most lowers the
    log loss of the running mean, and keeps the prefix of picks with the lowest log loss:
    a model that adds nothing gets weight 0, a copy adds nothing, and a mean of
    probabilities cannot sharpen them the way a learned meta-learner can (it is the safer
    combiner under a shift). `weights_`: (m,), summing to 1; `picks_`: the kept picks in
    order; `path_`: the mean's log loss after each of them. sample_weight is ignored."""

    def __init__(self, steps: int = 25) -> None:
        self.steps = steps

    def fit(self, x, y, sample_weight=None):
        p = predictions.per_model(x)
        y = np.asarray(y)
        # Log loss reads only the true class's probability, so the greedy search carries
        # that column alone: model j's (n,) at truth[j] (contiguous), and the running sum's.
        # The same numbers as `log_loss3` of the full (n, 3) mean, a third of the work.
        truth = np.ascontiguousarray(p[np.arange(len(p)), :, class_columns(y)].T)
        total = np.zeros(len(p))
        picks, path = [], []
        best = 0
        for step in range(1, self.steps + 1):
            losses = [true_class_log_loss((total + truth[j]) / step) for j in range(len(truth))]
            j = int(np.argmin(losses))
            total += truth[j]
            picks.append(j)
            path.append(losses[j])
            if losses[j] < path[best] - 1e-12:
                best = step - 1
        self.picks_, self.path_ = picks[: best + 1], path[: best + 1]
        counts = np.bincount(self.picks_, minlength=p.shape[1]).astype(float)
        self.weights_ = counts / counts.sum()
        self.classes_ = CLASSES  # the input's column order, whatever classes y holds
        return self

    def restricted(self, keep: list[int]) -> EnsembleSelection:
        """The same fitted ensemble reading only the models `keep` (every model with a
        weight must be in it), in that order."""
        if not np.isclose(self.weights_[keep].sum(), 1.0):
            raise ValueError("a model with a weight is missing from keep")
        out = EnsembleSelection(self.steps)
        out.weights_ = self.weights_[keep]
        out.classes_ = self.classes_
        return out

    def predict_proba(self, x):
        return np.einsum("nmc,m->nc", predictions.per_model(x), self.weights_)

    def predict(self, x):
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


@dataclass
class Selection:
    """weights: model index -> weight (> 0 only, summing to 1); picks: the greedy picks in
    order (with replacement), up to the best prefix; path: the mean's log loss after each
    pick; alone: each model's own log loss; prior: the class prior's. All on the window's
    training rows."""

    weights: dict[int, float]
    picks: list[int]
    path: list[float]
    alone: dict[int, float]
    prior: float

    def reads(self) -> list[int]:
        """The base models the stack reads (those with a weight), in model order."""
        return sorted(self.weights)

    def named_weights(self, names: list[str]) -> dict[str, float]:
        """Model name -> weight, for the models read."""
        return {names[j]: w for j, w in sorted(self.weights.items())}

    def reasons(self, names: list[str]) -> dict[str, str]:
        """Per model, in words: its weight and why it has it."""
        out = {}
        for j, name in enumerate(names):
            alone = f"alone {self.alone[j]:.4f}"
            if j not in self.weights:
                out[name] = (
                    f"not read: no pick of it lowered the mean's out-of-fold log loss ({alone})"
                )
                continue
            first = self.picks.index(j)
            before = self.prior if first == 0 else self.path[first - 1]
            out[name] = (
                f"weight {self.weights[j]:.2f} ({self.picks.count(j)} of {len(self.picks)} "
                f"picks; first pick {first + 1}: {before:.4f} -> {self.path[first]:.4f}; "
                f"{alone})"
            )
        out["stack"] = (
            f"out-of-fold log loss {self.path[-1]:.4f} (class prior {self.prior:.4f}, best "
            f"single model {min(self.alone.values()):.4f})"
        )
        return out


def select_ensemble(
    oof: np.ndarray, y: np.ndarray, rows: np.ndarray
) -> tuple[EnsembleSelection, Selection]:
    """Ensemble selection over every base model of `oof` ((n, 3m), all of `rows`
    predicted) on the training `rows`. Returns the fitted ensemble over all m models and
    the `Selection` that explains it."""
    x, y_rows = oof[rows], y[rows]
    ensemble = EnsembleSelection().fit(x, y_rows)
    prior = np.array([np.mean(y_rows == c) for c in CLASSES])
    selection = Selection(
        weights={j: float(w) for j, w in enumerate(ensemble.weights_) if w > 0},
        picks=list(ensemble.picks_),
        path=list(ensemble.path_),
        alone={
            j: log_loss3(y_rows, predictions.of_model(x, j)) for j in range(predictions.n_models(x))
        },
        prior=log_loss3(y_rows, np.tile(np.clip(prior, 1e-12, 1), (len(rows), 1))),
    )
    return ensemble, selection


class StackedModel(ClassifierMixin, BaseEstimator):
    """Base models stacked by a combiner on their out-of-fold probabilities.

    Parameters: `estimators`, a list of (name, unfitted classifier) whose `predict_proba`
    columns follow `stockml.defaults.CLASSES`; `final_estimator`, the unfitted combiner;
    `n_blocks` and `horizon` (trading days a label looks ahead), used by `fit` to make the
    out-of-fold predictions honest on overlapping labels.

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
        """Wrap base models and a combiner fitted elsewhere (the Ray pipeline)."""
        model = cls(estimators=list(estimators), final_estimator=final_estimator)
        model.names_ = [n for n, _ in estimators]
        model.estimators_ = [e for _, e in estimators]
        model.final_estimator_ = final_estimator
        model.classes_ = np.asarray(final_estimator.classes_)
        return model

    def fit(self, x, y, dates=None):
        """Forward-chained out-of-fold probabilities over `n_blocks` date blocks (rows without
        one, the first block, do not train the combiner), the combiner on them, then every
        base model refitted on all rows. `dates`: one per row; row order if omitted."""
        x, y = np.asarray(x), np.asarray(y)
        dates = np.arange(len(y)) if dates is None else np.asarray(dates)
        names = [n for n, _ in self.estimators]
        oof = predictions.empty(len(y), len(names))
        for fit_rows, predict_rows in forward_blocks(dates, self.n_blocks, self.horizon):
            for j, (_, base) in enumerate(self.estimators):
                fitted = clone(base).fit(x[fit_rows], y[fit_rows])
                predictions.put(oof, j, predict_rows, fitted.predict_proba(x[predict_rows]))
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
        return self.predict_proba_from_base(self.base_probabilities(x))

    def predict_proba_from_base(self, base: list[np.ndarray]) -> np.ndarray:
        """The same, from base probabilities already computed (in `names_` order)."""
        check_is_fitted(self, "final_estimator_")
        if len(base) != len(self.names_):
            raise ValueError(f"expected {len(self.names_)} base models' probabilities")
        return self.final_estimator_.predict_proba(predictions.side_by_side(base))

    def predict(self, x) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


@dataclass
class FittedStack:
    """One window's (or the live model's) stack: `combiner` reads the base models `reads`
    (indices, in model order) and was fitted on training `rows`; `decision` is its rule;
    `selection` explains the weights when ensemble selection chose them."""

    combiner: object
    decision: object  # training.decision.Decision
    rows: np.ndarray
    reads: list[int]
    selection: Selection | None = None

    def predict_proba(self, oof: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The stack's (len(rows), 3) probabilities from the base models' in `oof`,
        calibrated when its decision kept a calibrator."""
        proba = self.combiner.predict_proba(oof[np.ix_(rows, predictions.columns(self.reads))])
        calibrator = self.decision.calibration.calibrator
        return proba if calibrator is None else calibrator.transform(proba)


def fit_stack(
    oof: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    seed: int,
    book,
    setup,
    span: str,
    lives: np.ndarray | None = None,
    select: bool = True,
) -> FittedStack:
    """The stack and decision rule fitted on training `rows` of the forward out-of-fold
    matrix `oof` (every row of `rows` predicted by every model). With `select`, ensemble
    selection weights the base models and the stack reads those with a weight,
    uncalibrated; without, the multinomial meta-learner reads all of them
    (uniqueness-weighted when `lives` is given), with isotonic calibration where it helps.
    The rule (training/rules.py, on the trades of `book` with `setup`; `span` names the
    period) and calibration see cross-fitted probabilities of the same rows."""
    from training.decision import decide_from
    from training.models import META, fit_model
    from training.walkforward import cross_fitted
    from training.weights import weights_of

    y_rows, days = y[rows], day_index[rows]
    if select:
        whole, selection = select_ensemble(oof, y, rows)
        reads = selection.reads()
        x = oof[:, predictions.columns(reads)]
        proba = cross_fitted(EnsembleSelection, x, y, day_index, rows, horizon)
        decision = decide_from(
            proba, y_rows, days, rows, horizon, book, setup, span, calibrate=False
        )
        return FittedStack(whole.restricted(reads), decision, rows, reads, selection)
    weights = None if lives is None else weights_of(lives, rows)
    meta = fit_model(META(1, seed), oof[rows], y_rows, weights)
    proba = cross_fitted(lambda: META(1, seed), oof, y, day_index, rows, horizon)
    decision = decide_from(proba, y_rows, days, rows, horizon, book, setup, span)
    return FittedStack(meta, decision, rows, list(range(predictions.n_models(oof))))
