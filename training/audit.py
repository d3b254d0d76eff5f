"""The leakage audit: the old system's mistake, measured.

The same base model fitted on a random 80/20 row split, where overlapping 14-day label
windows of one stock land on both sides: its accuracy, beside the walk-forward stack's, is
what a random split of overlapping labels leaks, not skill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from training.metrics import evaluate


def random_split_audit(samples, model: str, seed: int) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 of `model` (a key of
    `training.models.BASE_MODELS`, at its default settings) trained on a random 80 % of
    the rows of `samples` and scored on the rest; `model_index` is its position in
    BASE_MODELS."""
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples.y))
    cut = int(len(order) * 0.8)
    train, test = order[:cut], order[cut:]
    # OpenMP's thread count is per calling thread, so the cap holds this fit alone (also
    # when it runs beside the stacking, `audit_beside`); BLAS's would be process-wide.
    with threadpool_limits(2, user_api="openmp"):
        fitted = BASE_MODELS[model](2, seed).fit(samples.x[train], samples.y[train])
        proba = fitted.predict_proba(samples.x[test])
    result = evaluate(samples.y[test], proba, samples.y[train])
    audit = {k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
    audit["model_index"] = float(list(BASE_MODELS).index(model))
    return audit


def audit_beside(samples, model: str, seed: int) -> Callable[[], dict[str, float]]:
    """`random_split_audit` started now in a daemon thread, beside the driver's stacking
    (the model's fit releases the GIL, so it takes a core the stacking leaves idle; a
    daemon, so Ctrl-C does not wait for it). Returns a function that waits for the audit
    and returns it, or raises what it raised."""
    out: dict = {}

    def work() -> None:
        try:
            out["audit"] = random_split_audit(samples, model, seed)
        except BaseException as exc:  # handed to the caller, raised there
            out["error"] = exc

    thread = threading.Thread(target=work, name="leakage-audit", daemon=True)
    thread.start()

    def result() -> dict[str, float]:
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["audit"]

    return result
