"""The eight base models and the meta-learner, as factories in a registry, and their
settings as data.

Each factory takes the number of threads the fitting task reserved, so two cores are never
oversubscribed, and returns an unfitted scikit-learn-compatible classifier with
`predict_proba` over the classes (-1, 0, +1). Sizes are chosen so the default walk-forward
run (~45 k rows x 179 features, 9 block fits + the live refit per model) stays within the
5-minute budget on 2 cores; `benchmarks/bench_train.py` measures it. They are small and
strongly regularised on purpose: measured on the first walk-forward window of the real
82-stock set and of the demo market, these sizes fit 2.5x faster (26 s vs 65 s for the
eight, one thread) than the previous ones (100-120 trees or rounds, MLP (64, 32)) and their
test log loss was equal or lower for seven of the eight (xgboost +0.01 on the real set,
-0.02 on the demo; the MLP 1.61 -> 1.05): with a signal this weak, bigger models fit noise.

Choices the report states:
- gradient boosting is sklearn's HistGradientBoostingClassifier: the exact
  GradientBoostingClassifier fits one tree per class per round on sorted features and
  takes many minutes at 40 k rows; the histogram version is the same model family, fast;
- the SVM is an RBF kernel approximated by 100 Nystroem components feeding a linear SVM,
  calibrated for probabilities: an exact RBF SVC is O(n^2) in memory and time at 40 k rows;
- the MLP and logistic regression see standardised inputs; trees see raw values;
- no model uses early stopping: sklearn and the boosters would hold out random rows, and
  random rows of overlapping 14-day windows are the leak this project exists to avoid;
- every pipeline imputes warm-up NaNs with the training median (learned in fit only;
  training/impute.py, scikit-learn's median imputation without its masked copy);
- the stack combines the base models' out-of-fold probabilities by ensemble selection (a
  weighted mean, training/stacking.py); recipes without selection use the multinomial
  logistic regression meta-learner here (`META`).

The settings are data (`DEFAULTS`), so a run's `TrainConfig` records every one of them and
its run id changes when one does (training/config.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin

Factory = Callable[..., ClassifierMixin]  # (threads, seed, **settings) -> unfitted model

# Each base model's settings, as data: what a run's TrainConfig records (and digests into
# the run id) and what the factories below build from. Threads and the seed are the fitting
# task's, not settings. Settings given to a factory replace these, key by key.
# max_rows: each fit trains on at most that many of its rows, drawn uniformly
# (training/ray_runner.py `subsample`). The costs are chosen on development data by two
# studies with one rule (the cheapest setting within 0.002 test log loss of the model on
# all of a fit's rows, on both development periods): benchmarks/bench_rows.py set the first
# row caps, benchmarks/bench_costs.py (measured log loss per second for all eight) the
# present ones: random forest on every row, 30 % of them but at most 15,000 drawn per tree
# (`tree_rows`; 3.4x faster than 30 % of all rows), extra trees and the MLP at 100,000 rows
# (2.8x, 3.0x), logistic regression at 50,000 (10x), XGBoost and scikit-learn's histogram
# booster at half the rounds and twice the learning rate (1.3x, 1.8x); LightGBM and the SVM
# met it only as they were. The imputer and the SVM's solver compute the same fits cheaper
# (benchmarks/bench_solvers.py).
DEFAULTS: dict[str, dict[str, Any]] = {
    "random_forest": {
        "n_estimators": 60,
        "min_samples_leaf": 100,
        "max_features": "sqrt",
        "max_samples": 0.3,
        # at most this many of those rows a tree (training/ray_runner.py): from 50,000 rows
        # on, every tree draws 15,000 of all of them
        "tree_rows": 15_000,
    },
    "xgboost": {
        "n_estimators": 30,
        "max_depth": 3,
        "learning_rate": 0.1,
        "subsample": 0.7,
        "colsample_bytree": 0.5,
        "min_child_weight": 20,
        "tree_method": "hist",
        "max_bin": 64,
    },
    "lightgbm": {
        "n_estimators": 60,
        "num_leaves": 15,
        "learning_rate": 0.05,
        "subsample": 0.7,
        "subsample_freq": 1,
        "colsample_bytree": 0.5,
        "min_child_samples": 200,
        "max_bin": 63,
    },
    "extra_trees": {
        "n_estimators": 60,
        "min_samples_leaf": 50,
        "max_features": "sqrt",
        "max_rows": 100_000,
    },
    # No early stopping: its validation split would be random rows, not dates.
    "gradient_boosting": {
        "max_iter": 25,
        "learning_rate": 0.1,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 200,
        "max_bins": 63,
        "early_stopping": False,
    },
    # max_iter is a time budget (~2 s per fit at 40 k rows); it need not converge.
    "mlp": {
        "hidden_layer_sizes": (32,),
        "alpha": 0.1,
        "batch_size": 512,
        "max_iter": 15,
        "max_rows": 100_000,
    },
    "logistic": {"C": 0.01, "max_iter": 200, "tol": 1e-3, "max_rows": 50_000},
    # n_components: the Nystroem map's size; C: the linear SVM's. dual: liblinear's dual
    # coordinate descent, the same objective as the primal solver that dual="auto" picks
    # with more rows than columns, 4.5x faster on development data at an equal test log
    # loss (benchmarks/bench_solvers.py).
    "svm": {"n_components": 100, "C": 0.05, "dual": True},
}


# Each model's tuning alternatives: overrides of DEFAULTS, more strongly regularised, tried
# on the inner blocks (training/tuning.py says how one is chosen).
ALTERNATIVES: dict[str, list[dict[str, Any]]] = {
    "random_forest": [{"min_samples_leaf": 400}],
    "extra_trees": [{"min_samples_leaf": 200}],
    "xgboost": [{"max_depth": 2, "min_child_weight": 50}],
    "lightgbm": [{"num_leaves": 7, "min_child_samples": 600}],
    "gradient_boosting": [{"max_leaf_nodes": 7, "min_samples_leaf": 600}],
    "mlp": [{"alpha": 1.0}],
    "logistic": [{"C": 0.001}],
    "svm": [{"C": 0.005}],
}


def settings_of(name: str, **overrides: Any) -> dict[str, Any]:
    """Model `name`'s settings: DEFAULTS with `overrides` on top. Raises KeyError for an
    unknown model."""
    return {**DEFAULTS[name], **overrides}


def estimator_settings(name: str, **settings: Any) -> dict[str, Any]:
    """The settings the estimator itself takes: `settings_of` less `max_rows` and
    `tree_rows`, which the fitting task applies (training/ray_runner.py)."""
    out = settings_of(name, **settings)
    out.pop("max_rows", None)
    out.pop("tree_rows", None)
    return out


def setting_names(name: str) -> set[str]:
    """The settings model `name` accepts: its estimator's parameters (the classifier of the
    pipeline; for the SVM, the linear SVM's and the Nystroem map's `n_components`)."""
    model = BASE_MODELS[name](1, 0)
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    if isinstance(estimator, LabelShift):
        estimator = estimator.estimator
    # caps on each fit's rows and on a forest tree's draw (training/ray_runner.py)
    names = {"max_rows", "tree_rows"}
    if name == "svm":
        estimator = estimator.estimator
        names.add("n_components")
    return names | set(estimator.get_params(deep=False))


def _impute():
    from training.impute import MedianImputer

    return MedianImputer()


def random_forest(threads: int, seed: int, **settings) -> ClassifierMixin:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        RandomForestClassifier(
            **{
                "n_jobs": threads,
                "random_state": seed,
                **estimator_settings("random_forest", **settings),
            }
        ),
    )


def extra_trees(threads: int, seed: int, **settings) -> ClassifierMixin:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        ExtraTreesClassifier(
            **{
                "n_jobs": threads,
                "random_state": seed,
                **estimator_settings("extra_trees", **settings),
            }
        ),
    )


def xgboost(threads: int, seed: int, **settings) -> ClassifierMixin:
    from xgboost import XGBClassifier

    return LabelShift(
        XGBClassifier(
            **{"n_jobs": threads, "random_state": seed, **estimator_settings("xgboost", **settings)}
        )
    )


def lightgbm(threads: int, seed: int, **settings) -> ClassifierMixin:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        **{
            "n_jobs": threads,
            "random_state": seed,
            "verbose": -1,
            **estimator_settings("lightgbm", **settings),
        }
    )


def gradient_boosting(threads: int, seed: int, **settings) -> ClassifierMixin:

    from training.binning import OnePassHistGradientBoosting

    # HistGradientBoosting threads through OpenMP; the task caps OMP_NUM_THREADS. The
    # one-pass variant: the same fit, its weighted bin edges computed in one pass a column.
    return OnePassHistGradientBoosting(
        **{"random_state": seed, **estimator_settings("gradient_boosting", **settings)}
    )


def mlp(threads: int, seed: int, **settings) -> ClassifierMixin:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    chosen = estimator_settings("mlp", **settings)
    chosen["hidden_layer_sizes"] = tuple(chosen["hidden_layer_sizes"])  # a list from JSON
    return make_pipeline(
        _impute(), StandardScaler(), MLPClassifier(**{"random_state": seed, **chosen})
    )


def logistic(threads: int, seed: int, **settings) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        _impute(),
        StandardScaler(),
        LogisticRegression(**estimator_settings("logistic", **settings)),
    )


def svm(threads: int, seed: int, **settings) -> ClassifierMixin:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    chosen = estimator_settings("svm", **settings)
    n_components = chosen.pop("n_components")
    return make_pipeline(
        _impute(),
        StandardScaler(),
        Nystroem(kernel="rbf", n_components=n_components, random_state=seed),
        CalibratedClassifierCV(LinearSVC(**chosen), cv=2, method="sigmoid"),
    )


def meta_learner(threads: int, seed: int, **params) -> ClassifierMixin:
    """Multinomial logistic regression on the base models' probabilities: the learned
    meta-learner of the ablation's first rows (recipes without selection); the final
    recipe combines by ensemble selection instead (training/stacking.py says why)."""
    from sklearn.linear_model import LogisticRegression

    # tol 1e-3: 4x fewer L-BFGS iterations on ~40 k x 24 inputs; the test log loss of the
    # four demo windows moved by -0.003..+0.003 against sklearn's default 1e-4.
    return LogisticRegression(**{"C": 1.0, "max_iter": 1000, "tol": 1e-3, **params})


class LabelShift(ClassifierMixin, BaseEstimator):
    """Meta-estimator for classifiers that want classes 0..K-1 (XGBoost): fits a clone of
    `estimator` on the classes' positions and maps predictions back to the labels."""

    def __init__(self, estimator=None) -> None:
        self.estimator = estimator

    def fit(self, x, y, **kwargs):
        import numpy as np
        from sklearn.base import clone
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        x, y = validate_data(self, x, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self.estimator_ = clone(self.estimator).fit(x, encoded, **kwargs)
        return self

    def predict_proba(self, x):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        x = validate_data(self, x, reset=False, ensure_all_finite="allow-nan")
        return self.estimator_.predict_proba(x)

    def predict(self, x):
        proba = self.predict_proba(x)
        return self.classes_[proba.argmax(axis=1)]


def fit_model(model, x, y, sample_weight=None):
    """Fit `model` on (x, y), passing `sample_weight` (n,) to the estimator that learns: the
    last step of a pipeline (imputers and scalers stay unweighted), the classifier itself
    otherwise. Every base model and the meta-learner accept weights. Returns the model."""
    if sample_weight is None:
        return model.fit(x, y)
    steps = getattr(model, "steps", None)
    if steps:
        return model.fit(x, y, **{f"{steps[-1][0]}__sample_weight": sample_weight})
    return model.fit(x, y, sample_weight=sample_weight)


# Relative single-thread fit cost per row (measured on the demo store, ~30 k rows): the
# runner starts the costliest fits first so the last ones to finish are short.
FIT_COST = {
    "random_forest": 6.0,
    "gradient_boosting": 4.0,
    "extra_trees": 3.4,
    "xgboost": 3.2,
    "lightgbm": 3.0,
    "logistic": 2.4,
    "svm": 2.1,
    "mlp": 2.0,
}

BASE_MODELS: dict[str, Factory] = {
    "random_forest": random_forest,
    "xgboost": xgboost,
    "lightgbm": lightgbm,
    "extra_trees": extra_trees,
    "gradient_boosting": gradient_boosting,
    "mlp": mlp,
    "logistic": logistic,
    "svm": svm,
}
META: Factory = meta_learner
