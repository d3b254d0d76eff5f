"""Probability calibration: per-class isotonic maps, Brier scores, reliability tables.

The meta-learner is a multinomial logistic regression on base probabilities, which is
already a sigmoid-type calibration of the base models. Isotonic calibration on top is
adopted only where it helps: `choose_calibration` fits it on cross-fitted probabilities of
the training period and keeps it only when its own purged cross-validation lowers the
Brier score there. Nothing here sees a test window.

The final recipe's stack, a weighted mean (training/stacking.py), is not recalibrated
(`uncalibrated`): a learned map on top would give up the bound that made the mean the
choice (its log loss is at most its members' weighted mean). On the 2017-2019 development
period the check above adopted isotonic maps in two windows: -0.07 in one, +0.52 in the
window after the December 2018 sell-off (the rebound of January 2019), a shift the
cross-validation over the training days could not see coming.

Source: Zadrozny & Elkan (2002) for one-vs-rest isotonic calibration with renormalisation;
Brier (1950) for the score (here the mean over rows of the summed squared error over the
three classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression

from stockml.defaults import CLASSES
from training.metrics import brier
from training.split import purged_kfold


class ClasswiseIsotonic:
    """One isotonic map per class (p_c -> P(y = c)), rows renormalised to sum to one.
    fit(proba (n, 3), y (n,)); transform(proba) -> (n, 3)."""

    def fit(self, proba: np.ndarray, y: np.ndarray) -> ClasswiseIsotonic:
        self.maps_ = [
            IsotonicRegression(y_min=1e-4, y_max=1 - 1e-4, out_of_bounds="clip").fit(
                proba[:, i], (y == c).astype(float)
            )
            for i, c in enumerate(CLASSES)
        ]
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        out = np.column_stack([m.predict(proba[:, i]) for i, m in enumerate(self.maps_)])
        return out / out.sum(axis=1, keepdims=True)


def reliability(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Per class and probability bin (equal width on [0, 1]): rows, mean predicted
    probability and observed frequency; empty bins left out. For the reliability diagram."""
    out = []
    edges = np.linspace(0, 1, bins + 1)
    for i, c in enumerate(CLASSES):
        which = np.clip(np.digitize(proba[:, i], edges) - 1, 0, bins - 1)
        for b in range(bins):
            mask = which == b
            if mask.any():
                out.append(
                    {
                        "class": int(c),
                        "bin": b,
                        "rows": int(mask.sum()),
                        "predicted": float(proba[mask, i].mean()),
                        "observed": float(np.mean(y[mask] == c)),
                    }
                )
    return out


@dataclass
class CalibrationChoice:
    calibrator: ClasswiseIsotonic | None
    brier_raw: float  # summed over classes, cross-validated on the training period
    brier_calibrated: float
    reason: str


def choose_calibration(
    proba: np.ndarray, y: np.ndarray, day_index: np.ndarray, horizon: int, k: int = 5
) -> CalibrationChoice:
    """Isotonic calibration of cross-fitted probabilities `proba` (n, 3), kept only when a
    purged K-fold over their days says it lowers the summed Brier score."""
    calibrated = np.empty_like(proba)
    for fit_days, valid_days in purged_kfold(np.unique(day_index), k, horizon):
        fit, valid = np.isin(day_index, fit_days), np.isin(day_index, valid_days)
        calibrated[valid] = ClasswiseIsotonic().fit(proba[fit], y[fit]).transform(proba[valid])
    raw, iso = float(brier(proba, y).sum()), float(brier(calibrated, y).sum())
    if iso < raw:
        return CalibrationChoice(
            ClasswiseIsotonic().fit(proba, y),
            raw,
            iso,
            f"isotonic calibration lowers the cross-validated Brier score {raw:.4f} -> {iso:.4f}",
        )
    return CalibrationChoice(
        None,
        raw,
        iso,
        f"kept the meta-learner's probabilities: isotonic calibration would move the "
        f"cross-validated Brier score {raw:.4f} -> {iso:.4f}",
    )


def uncalibrated(proba: np.ndarray, y: np.ndarray, what: str) -> CalibrationChoice:
    """No calibration, and why: `what` names the probabilities kept (e.g. 'the weighted
    mean's'); the raw cross-validated Brier score of `proba` (n, 3) is recorded."""
    raw = float(brier(proba, y).sum())
    return CalibrationChoice(
        None,
        raw,
        float("nan"),
        f"kept {what} probabilities (cross-validated Brier score {raw:.4f}); a mean is not "
        "recalibrated (training/calibration.py)",
    )
