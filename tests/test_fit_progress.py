"""The train bar's cost-weighted ETA (training/fit_progress.py) and the progress bar's use of it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from stockml.progress import StepProgress
from training.fit_progress import FitEta, fit_rows
from training.folds import FitJob, Fold
from training.models import FIT_COST


class Clock:
    """Seconds set by the test, in place of time.monotonic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(model: str, block: int, rows: int, **settings) -> FitJob:
    return FitJob(model, Fold(block), np.arange(rows), np.arange(0), tuple(settings.items()))


def test_fit_rows_follow_the_max_rows_cap():
    assert fit_rows(job("extra_trees", 1, 5000)) == 5000
    assert fit_rows(job("extra_trees", 1, 5000, max_rows=2000)) == 2000
    assert fit_rows(job("extra_trees", 1, 1000, max_rows=2000)) == 1000


def test_the_eta_weighs_each_fit_left_by_its_model_and_rows():
    """Forest fits at 10 s a 1,000 rows: after two, the fits left are two forests (20 s)
    and four logistic fits priced by FIT_COST from the forest's learned rate; after one
    logistic fit (1 s), the logistic's own rate. With two workers, half of that, but never
    less than the longest fit left. A count-based ETA would say 6 fits x 10 s = 60 s after
    the first two."""
    clock = Clock()
    one, two = FitEta(1, clock), FitEta(2, clock)
    forests = [job("random_forest", b, 1000) for b in range(4)]
    logistic = [job("logistic", b, 1000) for b in range(4)]
    for eta in (one, two):
        eta.plan([*forests, *logistic])
        assert eta.remaining() is None  # nothing ran yet: no estimate
        for fit in forests[:2]:
            eta.finished(fit, 10.0)
    priced = 4 * 1000 * 0.01 * FIT_COST["logistic"] / FIT_COST["random_forest"]
    assert one.remaining() == pytest.approx(20 + priced)
    assert two.remaining() == pytest.approx((20 + priced) / 2)
    for eta in (one, two):
        eta.finished(logistic[0], 1.0)
        eta.finished(forests[2], 10.0)
    assert one.remaining() == pytest.approx(10 + 3)
    assert two.remaining() == pytest.approx(10)  # the last forest alone takes 10 s


def test_with_workers_unknown_the_eta_is_the_runs_own_throughput():
    """A cluster's workers are not known: elapsed since the first fit began x expected
    seconds left / expected seconds run. Time before the first fit (Ray starting) does
    not count."""
    clock = Clock()
    eta = FitEta(None, clock)
    fits = [job("lightgbm", b, 2000) for b in range(6)]
    eta.plan(fits)
    clock.now += 30  # Ray starts, the matrix goes to its object store
    clock.now += 8
    eta.finished(fits[0], 8.0)
    eta.finished(fits[1], 8.0)  # two workers: both began 8 s ago
    assert eta.remaining() == pytest.approx(8 * 4 * 8 / 16)


def test_kept_checkpoints_leave_the_plan_without_counting_as_work():
    eta = FitEta(1, Clock())
    fits = [job("lightgbm", b, 2000) for b in range(4)]
    eta.plan(fits)
    eta.finished(fits[0], None)  # a kept checkpoint: no time spent on it
    assert eta.remaining() is None
    eta.finished(fits[1], 8.0)
    assert eta.remaining() == pytest.approx(8 * 2)  # two like it left
    eta.plan(fits)  # a new plan keeps what is done out of it
    assert eta.remaining() == pytest.approx(8 * 2)
    for fit in fits[2:]:
        eta.finished(fit, 8.0)
    assert eta.remaining() == 0.0


def test_a_step_with_its_own_deadline_reports_it():
    """A task field `eta_at` (a time.monotonic() deadline) is the ETA of the step's lines
    and events, whatever rich's rate says."""
    with StepProgress(enabled=False) as progress:
        task = progress.add_task("train", total=10)
        progress.update(task, advance=1, eta_at=time.monotonic() + 100)
        figures = progress._figures(task)
        assert 95 <= figures["eta_s"] <= 100
        assert "ETA 1:40" in progress._line(figures) or "ETA 1:39" in progress._line(figures)
        progress.update(task, eta_at=time.monotonic() - 5)  # late: 0, never negative
        assert progress._figures(task)["eta_s"] == 0.0
