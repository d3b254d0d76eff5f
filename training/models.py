"""The eight base models and the meta-learner, as factories in a registry.

Each factory takes the number of threads the fitting task reserved, so two cores are never
oversubscribed, and returns an unfitted scikit-learn-compatible classifier with
`predict_proba` over the classes (-1, 0, +1). Sizes are chosen so the default run
(~37 k training rows x 179 features, 5 folds + a refit per model) stays within the
5-minute budget on 2 cores; `benchmarks/bench_train.py` measures it.

Choices the report states:
- gradient boosting is sklearn's HistGradientBoostingClassifier: the exact
  GradientBoostingClassifier fits one tree per class per round on sorted features and
  takes many minutes at 40 k rows; the histogram version is the same model family, fast;
- the SVM is an RBF kernel approximated by 150 Nystroem components feeding a linear SVM,
  calibrated for probabilities: an exact RBF SVC is O(n^2) in memory and time at 40 k rows;
- the MLP and logistic regression see standardised inputs; trees see raw values;
- no model uses early stopping: sklearn and the boosters would hold out random rows, and
  random rows of overlapping 14-day windows are the leak this project exists to avoid;
- every pipeline imputes warm-up NaNs with the training median (learned in fit only);
- the meta-learner is a multinomial logistic regression on the base models'
  out-of-fold probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import ClassifierMixin

Factory = Callable[[int, int], ClassifierMixin]


def _impute():
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)


def random_forest(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        RandomForestClassifier(
            n_estimators=100,
            min_samples_leaf=50,
            max_features="sqrt",
            max_samples=0.4,
            n_jobs=threads,
            random_state=seed,
        ),
    )


def extra_trees(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        ExtraTreesClassifier(
            n_estimators=120,
            min_samples_leaf=20,
            max_features="sqrt",
            n_jobs=threads,
            random_state=seed,
        ),
    )


def xgboost(threads: int, seed: int) -> ClassifierMixin:
    from xgboost import XGBClassifier

    return _LabelShift(
        XGBClassifier(
            n_estimators=120,
            max_depth=4,
            learning_rate=0.08,
            subsample=0.8,
            colsample_bytree=0.5,
            tree_method="hist",
            n_jobs=threads,
            random_state=seed,
        )
    )


def lightgbm(threads: int, seed: int) -> ClassifierMixin:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=120,
        num_leaves=31,
        learning_rate=0.08,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.5,
        n_jobs=threads,
        random_state=seed,
        verbose=-1,
    )


def gradient_boosting(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # HistGradientBoosting threads through OpenMP; the task caps OMP_NUM_THREADS.
    # No early stopping: its validation split would be random rows, not dates.
    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.08, early_stopping=False, random_state=seed
    )


def mlp(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        _impute(),
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(64, 32),
            alpha=1e-3,
            max_iter=40,  # a time budget: ~7 s per fit; it need not converge to be useful
            random_state=seed,
        ),
    )


def logistic(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        _impute(), StandardScaler(), LogisticRegression(C=0.1, max_iter=300, tol=1e-3)
    )


def svm(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return make_pipeline(
        _impute(),
        StandardScaler(),
        Nystroem(kernel="rbf", n_components=150, random_state=seed),
        CalibratedClassifierCV(LinearSVC(C=0.1), cv=3, method="sigmoid"),
    )


def meta_learner(threads: int, seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000)


class _LabelShift(ClassifierMixin):
    """XGBoost wants classes 0..K-1: map (-1, 0, 1) in and out, nothing else."""

    def __init__(self, model) -> None:
        self.model = model

    def fit(self, x, y, **kwargs):
        import numpy as np

        self.classes_ = np.unique(y)
        self.model.fit(x, np.searchsorted(self.classes_, y), **kwargs)
        return self

    def predict_proba(self, x):
        return self.model.predict_proba(x)

    def predict(self, x):
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


# Relative single-thread fit cost per row (measured on the demo store, ~30 k rows): the
# runner starts the costliest fits first so the last ones to finish are short.
FIT_COST = {
    "random_forest": 11.0,
    "svm": 9.0,
    "gradient_boosting": 8.3,
    "extra_trees": 7.9,
    "mlp": 6.7,
    "lightgbm": 5.5,
    "xgboost": 5.1,
    "logistic": 2.6,
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
