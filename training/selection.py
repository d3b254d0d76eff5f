"""Which base models earn their place in a stack: forward selection on out-of-fold skill.

Every base model is still fitted and reported; a window's stack reads only the ones that
add skill to the others on that window's training period. Starting from none (the class
prior), each step adds the base model whose probabilities most lower the meta-learner's
cross-fitted log loss (purged K-fold over the training period's forward out-of-fold rows,
`walkforward.cross_fitted`), and stops when the best addition gains less than `min_gain`
nats. This is greedy stepwise selection with a held-out criterion (Caruana et al., "Ensemble
selection from libraries of models", ICML 2004, select on held-out data; here the held-out
data are the purged folds). The test windows are never looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from training.report import log_loss3
from training.walkforward import cross_fitted

MIN_GAIN = 0.001  # nats of cross-fitted log loss a model must add to be kept
FOLDS = 3


@dataclass
class Selection:
    """kept: indices of the kept base models, in the order they were added; path: the
    cross-fitted log loss after each addition (path[0] is the class prior's); tried: the
    best log loss each model reached when it was last a candidate."""

    kept: list[int]
    path: list[float]
    tried: dict[int, float] = field(default_factory=dict)
    inputs: str = "proba"  # the meta-learner's inputs: probabilities or their logs
    input_scores: dict[str, float] = field(default_factory=dict)
    combiner: str = "stack"  # "stack" (the meta-learner) or "ensemble" (ensemble selection)
    combiner_scores: dict[str, float] = field(default_factory=dict)
    weights: dict[int, float] = field(default_factory=dict)  # the ensemble's, when chosen

    def reads(self, n_models: int) -> list[int]:
        """The base models the window's combiner reads: the kept ones for the meta-learner,
        those with a weight for the ensemble."""
        if self.combiner == "ensemble":
            return [j for j in range(n_models) if self.weights.get(j, 0.0) > 0]
        return list(self.kept)

    def reasons(self, names: list[str]) -> dict[str, str]:
        """Per model, in words: why it is in the stack or not."""
        out = {}
        for step, j in enumerate(self.kept):
            gain = self.path[step] - self.path[step + 1]
            out[names[j]] = (
                f"kept (step {step + 1}): out-of-fold log loss {self.path[step]:.4f} -> "
                f"{self.path[step + 1]:.4f} ({gain:+.4f} gained)"
            )
        if self.combiner_scores:
            scores = ", ".join(f"{k} {v:.4f}" for k, v in self.combiner_scores.items())
            out["combiner"] = (
                f"{self.combiner} (log loss on the last training block, fitted on the blocks "
                f"before it: {scores})"
            )
        if self.input_scores:
            scores = ", ".join(f"{k} {v:.4f}" for k, v in self.input_scores.items())
            out["meta-learner"] = f"reads {self.inputs} (cross-fitted log loss: {scores})"
        final = self.path[-1]
        for j, name in enumerate(names):
            if j not in self.kept:
                best = self.tried.get(j, float("nan"))
                out[name] = (
                    f"left out of the meta-learner: adding it gave {best:.4f} against "
                    f"{final:.4f} (less than {MIN_GAIN} gained)"
                )
        if self.combiner == "ensemble":
            for j, name in enumerate(names):
                weight = self.weights.get(j, 0.0)
                said = f"; meta-learner: {out[name]}" if name in out else ""
                out[name] = (
                    f"weight {weight:.2f} in the ensemble{said}"
                    if weight > 0
                    else f"not picked by ensemble selection{said}"
                )
        return out


def forward_select(
    make_meta: Callable[[], object],
    oof: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    n_models: int,
    min_gain: float = MIN_GAIN,
    folds: int = FOLDS,
) -> Selection:
    """Greedy forward selection of base models (3 columns each in `oof`) for the
    meta-learner made by `make_meta()`, on `rows` of the training period. Always keeps at
    least one model. Returns a `Selection`."""
    y_rows = y[rows]
    prior = np.array([np.mean(y_rows == c) for c in (-1, 0, 1)])
    path = [log_loss3(y_rows, np.tile(np.clip(prior, 1e-12, 1), (len(rows), 1)))]
    kept: list[int] = []
    tried: dict[int, float] = {}
    while len(kept) < n_models:
        scores = {}
        for j in range(n_models):
            if j in kept:
                continue
            cols = np.concatenate([np.arange(3 * m, 3 * m + 3) for m in [*kept, j]])
            proba = cross_fitted(make_meta, oof[:, cols], y, day_index, rows, horizon, folds)
            scores[j] = log_loss3(y_rows, proba)
        tried.update(scores)
        best = min(scores, key=scores.get)
        if kept and path[-1] - scores[best] < min_gain:
            break
        kept.append(best)
        path.append(scores[best])
    return Selection(kept, path, tried)


def choose_inputs(
    make_meta: Callable[[str], object],
    x: np.ndarray,
    y: np.ndarray,
    day_index: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    folds: int = FOLDS,
) -> tuple[str, dict[str, float]]:
    """'proba' or 'log' inputs for the meta-learner (`make_meta(inputs)`), whichever has
    the lower cross-fitted log loss on `rows`; ties go to 'proba'. Returns the choice and
    both scores."""
    scores = {}
    for inputs in ("proba", "log"):
        proba = cross_fitted(lambda i=inputs: make_meta(i), x, y, day_index, rows, horizon, folds)
        scores[inputs] = log_loss3(y[rows], proba)
    return ("log" if scores["log"] < scores["proba"] - 1e-6 else "proba"), scores


def forward_holdout(
    rows: np.ndarray, day_index: np.ndarray, start: int, fit_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training-period `rows` forward: (rows whose days are before `fit_end`, rows from
    day `start` on): fit on the past, score on the last block, as a test window is."""
    return rows[day_index[rows] < fit_end], rows[day_index[rows] >= start]


def choose_combiner(
    candidates: dict[str, tuple[Callable[[], object], np.ndarray]],
    y: np.ndarray,
    fit_rows: np.ndarray,
    valid_rows: np.ndarray,
) -> tuple[str, dict[str, float]]:
    """The candidate combiner (name -> (factory, its input matrix)) with the lowest log loss
    on `valid_rows` when fitted on `fit_rows`: a forward check, the way a test window
    meets its stack (cross-fitting mixes the training period's dates, which flatters a
    learned combiner under a shift). Ties go to the first candidate."""
    scores = {}
    for name, (make, x) in candidates.items():
        model = make().fit(x[fit_rows], y[fit_rows])
        scores[name] = log_loss3(y[valid_rows], model.predict_proba(x[valid_rows]))
    first = next(iter(scores))
    best = min(scores, key=scores.get)
    return (best if scores[best] < scores[first] - 1e-6 else first), scores
