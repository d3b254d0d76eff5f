"""The fit phase's progress: the train bar, its ETA weighted by what each fit left is
expected to cost, and the log of every fit.

A count-based ETA (fits left / recent fits per second) swings by minutes on a walk-forward
run: the fits run costliest first (training/ray_runner.py `unfinished`), a forest on 20
years of rows costs a hundred times a logistic regression on three, and fits finish in
bursts. Here a fit's expected seconds are

    seconds per row of its model  x  the rows it trains on (after its `max_rows` cap)

with each model's seconds per row learned from its fits finished in this run (before one
has finished: its relative cost `FIT_COST` times the median, over the models learned so
far, of learned seconds per row / `FIT_COST`). With W workers fitting at once (1 serial,
the cores of a local Ray) the ETA is

    max(expected seconds of the fits left / W, the longest fit left)

(on a local Ray, fits keep both cores busy: 846 fit seconds in 419 s of a demo store's
fit phase); with W unknown (a cluster), the run's own throughput,

    (now - the first fit's start) x (expected seconds left) / (expected seconds run),

which reads high while the first fits are in flight. Kept checkpoints leave the plan
without counting as work done. Before the first fit of this process ends there is no
estimate (None).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.folds import FitJob


def fit_rows(job: FitJob) -> int:
    """The rows `job` trains on: its training rows, at most its `max_rows` setting."""
    cap = dict(job.settings).get("max_rows")
    rows = len(job.train_rows)
    return rows if cap is None else min(rows, int(cap))


@dataclass
class FitEta:
    """Expected seconds of the fit phase still to run (see the module doc), `workers` fits
    at a time (None: unknown). `plan(jobs)` sets the fits to come, `finished(job,
    seconds)` records one (seconds None: a kept checkpoint), `remaining()` is the
    estimate in seconds or None."""

    workers: int | None = None
    clock: Callable[[], float] = time.monotonic
    _first_start: float | None = None  # clock() when the earliest fit run here began
    _left: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (model, rows)
    _ran: list[tuple[str, int]] = field(default_factory=list)
    _seconds: dict[str, float] = field(default_factory=dict)  # model -> fit seconds run
    _rows: dict[str, int] = field(default_factory=dict)  # model -> rows those fits trained on
    _seen: set[str] = field(default_factory=set)

    def plan(self, jobs: Iterable[FitJob]) -> None:
        """The fits still to come are `jobs` less those already finished."""
        self._left = {j.name: (j.model, fit_rows(j)) for j in jobs if j.name not in self._seen}

    def finished(self, job: FitJob, seconds: float | None) -> None:
        """Fit `job` ended now after `seconds` of fitting (None: its checkpoint was kept)."""
        self._seen.add(job.name)
        self._left.pop(job.name, None)
        if seconds is None:
            return
        began = self.clock() - seconds
        self._first_start = began if self._first_start is None else min(self._first_start, began)
        rows = fit_rows(job)
        self._ran.append((job.model, rows))
        self._seconds[job.model] = self._seconds.get(job.model, 0.0) + seconds
        self._rows[job.model] = self._rows.get(job.model, 0) + rows

    def _per_row(self) -> Callable[[str], float]:
        """Seconds per row of each model: learned, else scaled from FIT_COST."""
        from training.models import FIT_COST

        learned = {m: self._seconds[m] / max(self._rows[m], 1) for m in self._seconds}
        scale = statistics.median(learned[m] / FIT_COST.get(m, 1.0) for m in learned)
        return lambda model: learned.get(model, scale * FIT_COST.get(model, 1.0))

    def remaining(self) -> float | None:
        """Seconds the fits left are expected to take, or None before any fit ran here."""
        if not self._left:
            return 0.0
        if not self._ran:
            return None
        per_row = self._per_row()
        left = [per_row(m) * rows for m, rows in self._left.values()]
        if self.workers:
            return max(sum(left) / self.workers, max(left))
        done = sum(per_row(m) * rows for m, rows in self._ran)
        if done <= 0:
            return None
        return (self.clock() - self._first_start) * sum(left) / done


class FitProgress:
    """The train bar (`bar`, stockml.progress.Bar) and the log (`log`, structlog) of the fit
    phase, called as on_done(job, record) for every fit: each distinct fit counted once,
    whether it ran now or its checkpoint was kept (record None), so the bar ends at its
    total; its ETA weighted by each fit's expected cost (FitEta, `workers` fits at a time,
    None: unknown); one `fit_done` log event per fit that ran (model, fold, seconds, rows,
    host)."""

    def __init__(self, bar, log, workers: int | None = None) -> None:
        self.bar, self.log, self.seen = bar, log, set()
        self.ran = 0
        self.eta = FitEta(workers)

    def plan(self, jobs: list[FitJob]) -> None:
        """The fits the phase will make (the bar's total follows the distinct names)."""
        self.eta.plan(jobs)
        self.bar.update(total=len({j.name for j in jobs}))

    def _eta_at(self) -> float | None:
        remaining = self.eta.remaining()
        return None if remaining is None else time.monotonic() + remaining

    def __call__(self, job: FitJob, record) -> None:
        if job.name in self.seen:
            return
        self.seen.add(job.name)
        self.eta.finished(job, None if record is None else record.seconds)
        if record is None:
            self.bar.advance(1, status=f"{job.name} (checkpoint)", eta_at=self._eta_at())
            return
        self.ran += 1
        self.bar.advance(1, status=job.name, eta_at=self._eta_at())
        self.log.info(
            "fit_done",
            model=job.model,
            fold=job.fold.name,
            seconds=record.seconds,
            rows=record.rows,
            host=record.host,
            done=len(self.seen),
        )
