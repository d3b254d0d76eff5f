"""The eight base models and the meta-learner, as factories in a registry.

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
- every pipeline imputes warm-up NaNs with the training median (learned in fit only);
- the stack combines the base models' out-of-fold probabilities by ensemble selection (a
  weighted mean, training/selection.py); recipes without selection use a multinomial
  logistic regression meta-learner.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator, ClassifierMixin

Factory = Callable[..., ClassifierMixin]  # (threads, seed, **params) -> unfitted model


def _impute():
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)


def random_forest(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        RandomForestClassifier(
            **{
                "n_estimators": 60,
                "min_samples_leaf": 100,
                "max_features": "sqrt",
                "max_samples": 0.3,
                "n_jobs": threads,
                "random_state": seed,
                **params,
            }
        ),
    )


def extra_trees(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        _impute(),
        ExtraTreesClassifier(
            **{
                "n_estimators": 60,
                "min_samples_leaf": 50,
                "max_features": "sqrt",
                "n_jobs": threads,
                "random_state": seed,
                **params,
            }
        ),
    )


def xgboost(threads: int, seed: int, **params) -> ClassifierMixin:
    from xgboost import XGBClassifier

    return LabelShift(
        XGBClassifier(
            **{
                "n_estimators": 60,
                "max_depth": 3,
                "learning_rate": 0.05,
                "subsample": 0.7,
                "colsample_bytree": 0.5,
                "min_child_weight": 20,
                "tree_method": "hist",
                "max_bin": 64,
                "n_jobs": threads,
                "random_state": seed,
                **params,
            }
        )
    )


def lightgbm(threads: int, seed: int, **params) -> ClassifierMixin:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        **{
            "n_estimators": 60,
            "num_leaves": 15,
            "learning_rate": 0.05,
            "subsample": 0.7,
            "subsample_freq": 1,
            "colsample_bytree": 0.5,
            "min_child_samples": 200,
            "max_bin": 63,
            "n_jobs": threads,
            "random_state": seed,
            "verbose": -1,
            **params,
        }
    )


def gradient_boosting(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # HistGradientBoosting threads through OpenMP; the task caps OMP_NUM_THREADS.
    # No early stopping: its validation split would be random rows, not dates.
    return HistGradientBoostingClassifier(
        **{
            "max_iter": 50,
            "learning_rate": 0.05,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 200,
            "max_bins": 63,
            "early_stopping": False,
            "random_state": seed,
            **params,
        }
    )


def mlp(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        _impute(),
        StandardScaler(),
        MLPClassifier(
            **{
                "hidden_layer_sizes": (32,),
                "alpha": 0.1,
                "batch_size": 512,
                "max_iter": 15,  # a time budget: ~2 s per fit; it need not converge
                "random_state": seed,
                **params,
            }
        ),
    )


def logistic(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        _impute(),
        StandardScaler(),
        LogisticRegression(**{"C": 0.01, "max_iter": 200, "tol": 1e-3, **params}),
    )


def svm(threads: int, seed: int, **params) -> ClassifierMixin:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return make_pipeline(
        _impute(),
        StandardScaler(),
        Nystroem(kernel="rbf", n_components=100, random_state=seed),
        CalibratedClassifierCV(LinearSVC(**{"C": 0.05, **params}), cv=2, method="sigmoid"),
    )


def log_proba(p):
    """Log of probabilities clipped at 1e-6. No longer used to build a model: kept so that
    signal models pickled by earlier versions (a meta-learner on log inputs) still load."""
    import numpy as np

    return np.log(np.clip(p, 1e-6, 1.0))


def meta_learner(threads: int, seed: int, **params) -> ClassifierMixin:
    """Multinomial logistic regression on the base models' probabilities: the learned
    meta-learner of the ablation's first rows (recipes without selection); the final
    recipe combines by ensemble selection instead (training/selection.py says why)."""
    from sklearn.linear_model import LogisticRegression

    # tol 1e-3: 4x fewer L-BFGS iterations on ~40 k x 24 inputs; the test log loss of the
    # four demo windows moved by -0.003..+0.003 against sklearn's default 1e-4.
    return LogisticRegression(**{"C": 1.0, "max_iter": 1000, "tol": 1e-3, **params})


class EnsembleSelection(ClassifierMixin, BaseEstimator):
    """Ensemble selection (Caruana, Niculescu-Mizil, Crew and Ksikes, "Ensemble selection
    from libraries of models", ICML 2004; AutoGluon's final weighted ensemble): a weighted
    mean of the base models' probabilities whose weights are counts of greedy picks.

    Input: (n, 3 * m) probabilities of m models side by side in `stockml.defaults.CLASSES`
    order; output (n, 3). `fit` starts from the single model with the lowest log loss on
    (x, y), then `steps` times adds, with replacement, the model whose inclusion most
    lowers the log loss of the running mean, and keeps the prefix of picks with the lowest
    log loss: a model that adds nothing gets weight 0, a copy adds nothing, and a mean of
    probabilities cannot sharpen them the way a learned meta-learner can (it is the safer
    combiner under a shift). `weights_`: (m,), summing to 1; `picks_`: the kept picks in
    order; `path_`: the mean's log loss after each of them. sample_weight is ignored. The
    stack of the final recipe (training/selection.py)."""

    def __init__(self, steps: int = 25) -> None:
        self.steps = steps

    def fit(self, x, y, sample_weight=None):
        import numpy as np

        from stockml.defaults import CLASSES
        from training.report import log_loss3

        p = np.asarray(x, dtype=float).reshape(len(x), -1, 3)
        y = np.asarray(y)
        total = np.zeros((len(p), 3))
        picks, path = [], []
        best = 0
        for step in range(1, self.steps + 1):
            losses = [log_loss3(y, (total + p[:, j]) / step) for j in range(p.shape[1])]
            j = int(np.argmin(losses))
            total += p[:, j]
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
        import numpy as np

        if not np.isclose(self.weights_[keep].sum(), 1.0):
            raise ValueError("a model with a weight is missing from keep")
        out = EnsembleSelection(self.steps)
        out.weights_ = self.weights_[keep]
        out.classes_ = self.classes_
        return out

    def predict_proba(self, x):
        import numpy as np

        p = np.asarray(x, dtype=float).reshape(len(x), -1, 3)
        return np.einsum("nmc,m->nc", p, self.weights_)

    def predict(self, x):
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


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
