"""Which base models earn their place in a stack, and with what weight: ensemble selection
on out-of-fold skill.

A window's stack is a weighted mean of base models' probabilities
(`training.models.EnsembleSelection`; Caruana, Niculescu-Mizil, Crew and Ksikes, "Ensemble
selection from libraries of models", ICML 2004), whose weights are counts of greedy picks
on the window's training period: the forward out-of-fold predictions of the rows whose
labels end before the window (`walkforward.meta_rows`). A model gets weight only when
picking it lowered that log loss; the others are still fitted and reported, not read. The
test windows are never looked at.

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
the benchmark period, 0.988 -> 0.986 (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockml.defaults import CLASSES
from training.models import EnsembleSelection
from training.report import log_loss3


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
    """Ensemble selection over every base model (3 columns each in `oof`, (n, 3m)) on the
    training `rows` (all predicted). Returns the fitted ensemble over all m models and the
    `Selection` that explains it."""
    x, y_rows = oof[rows], y[rows]
    ensemble = EnsembleSelection().fit(x, y_rows)
    n_models = oof.shape[1] // 3
    prior = np.array([np.mean(y_rows == c) for c in CLASSES])
    selection = Selection(
        weights={j: float(w) for j, w in enumerate(ensemble.weights_) if w > 0},
        picks=list(ensemble.picks_),
        path=list(ensemble.path_),
        alone={j: log_loss3(y_rows, x[:, 3 * j : 3 * j + 3]) for j in range(n_models)},
        prior=log_loss3(y_rows, np.tile(np.clip(prior, 1e-12, 1), (len(rows), 1))),
    )
    return ensemble, selection
