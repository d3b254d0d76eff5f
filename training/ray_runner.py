"""Every (model, fold) fit as a Ray task, checkpointed by the driver as it completes.

Nothing a task needs comes from the driver's disk, so the same code runs on a local Ray or
on a cluster whose workers cannot see the run folder or the store: the training matrix,
labels and the labels' lives (for sample weights) go into Ray's object store once (tasks
read them zero-copy), and a task returns its fitted model (pickled bytes), its predictions
and where it ran (node id, host, seconds). Only the driver writes, through the run folder's
recorder (training/recorder.py: the checkpoint files and their signed manifest). A rerun
skips fits whose checkpoint checks out.

Each task reserves one CPU and caps its model's threads (n_jobs and the OpenMP/BLAS pools)
to it, so no machine's cores are oversubscribed; tasks are spread over the cluster's nodes.
A task lost with its node (or its worker process) is rerun by Ray up to TASK_RETRIES
times; each result reaches the driver once and the driver writes each checkpoint once, so a
retry cannot leave two copies of a fit. An exception raised by a fit itself is not retried:
it would fail again.
"""

from __future__ import annotations

import os
import pickle
import socket
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from training.folds import FitJob
from training.recorder import FitRecord, FitResult, RunFolder

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Reruns of a task whose worker or node died (Ray's max_retries); a fit that raises is not
# retried. Three covers a node lost mid-run and one more while the retry runs.
TASK_RETRIES = 3


def fit_one(
    job: FitJob,
    x: np.ndarray,
    y: np.ndarray,
    threads: int,
    seed: int,
    lives: np.ndarray | None = None,
) -> FitResult:
    """Fit one model on its rows and predict its predict rows; touches no file. With
    `lives` ((n, 4) int64: symbol code, day index, exit offset and class of each row's
    label) and a `weighted` job, rows are weighted by their label's average uniqueness
    among the job's own training rows (training/weights.py): computed per fit, so no label
    outside the fit (a purged or test row) shapes a training row's weight."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS, fit_model
    from training.weights import weights_of

    started = time.perf_counter()
    with threadpool_limits(threads), warnings.catch_warnings():
        # The MLP's iteration cap is a time budget, not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        settings = dict(job.settings)
        train = subsample(job.train_rows, settings.pop("max_rows", None), seed, job.fold)
        tree_rows = settings.pop("tree_rows", None)  # a cap on the rows a forest's tree draws
        if tree_rows is not None:
            share = settings.get("max_samples") or 1.0
            settings["max_samples"] = max(1, min(int(tree_rows), int(share * len(train))))
        model = BASE_MODELS[job.model](threads, seed, **settings)
        w = weights_of(lives, train) if lives is not None and job.weighted else None
        fit_model(model, x[train], y[train], w)
        proba = (
            model.predict_proba(x[job.predict_rows]) if len(job.predict_rows) else np.empty((0, 3))
        )
    seconds = round(time.perf_counter() - started, 3)
    record = FitRecord(
        job.model, job.fold.name, None, socket.gethostname(), seconds, len(job.train_rows)
    )
    return FitResult(job.name, pickle.dumps(model), proba, record)


def subsample(rows: np.ndarray, max_rows: int | None, seed: int, fold) -> np.ndarray:
    """`rows`, or when there are more than `max_rows`, that many of them drawn uniformly
    without replacement (in their order) with a generator seeded by the run's seed and the
    fold: the same rows on every rerun and on every node. A model's `max_rows` setting
    (training/models.py) caps what one fit costs; its weights, if any, count only the rows
    drawn."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    block = -1 if fold.block is None else fold.block
    rng = np.random.default_rng([seed, block + 1, fold.candidate])
    return np.sort(rng.choice(rows, size=int(max_rows), replace=False))


def fit_on_node(
    job: FitJob,
    x: np.ndarray,
    y: np.ndarray,
    threads: int,
    seed: int,
    lives: np.ndarray | None = None,
) -> FitResult:
    """The Ray task: `fit_one`, recording the id of the node it ran on."""
    import ray

    result = fit_one(job, x, y, threads, seed, lives)
    node_id = ray.get_runtime_context().get_node_id()
    return replace(result, record=replace(result.record, node_id=node_id))


def check_ray_address(address: str | None) -> None:
    """Fail within seconds, in one line (RayAddressError, an InputError: exit 2), when
    `address` (else $RAY_ADDRESS) is not a Ray cluster that answers: nothing listening, a
    server that is not Ray's GCS (silent, or another protocol: what it said is quoted), or
    a GCS that does not serve us. `auto`, `local` and `ray://...` are left to Ray. See
    stockml/ray_address.py."""
    from stockml.ray_address import probe

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        probe(address)


def init_ray(address: str | None) -> Any:
    """Local Ray on this machine's cores, or the cluster at `address` / $RAY_ADDRESS.

    Ray's token-authentication mode is set explicitly (stockml.ray_address.auth_mode), so
    Ray does not print its banner about choosing one on every run. A cluster that refuses
    us (another Ray version, a wrong token...) is one StockmlError line naming it, not
    Ray's traceback."""
    from stockml.errors import StockmlError
    from stockml.ray_address import auth_mode

    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ["RAY_AUTH_MODE"] = auth_mode(address)
    import ray

    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            from stockml.places import local_ray_environment

            local_ray_environment()  # its temp dir can take files, its token has a home
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        what = f"connect to the cluster at {address}" if address else "start on this machine"
        raise StockmlError(f"Ray could not {what}: {' '.join(lines[:2])[:300]}") from exc
    return ray


def unfinished(jobs: list[FitJob], run: RunFolder, on_done=None) -> list[FitJob]:
    """Jobs without a valid checkpoint, costliest first (longest-processing-time order keeps
    every core busy to the end); finished ones are reported to `on_done` as skipped."""
    from training.models import FIT_COST

    todo = [j for j in jobs if not run.fit_done(j.name)]
    waiting = {j.name for j in todo}
    for job in jobs:
        if job.name not in waiting and on_done is not None:
            on_done(job, None)
    return sorted(todo, key=lambda j: -FIT_COST.get(j.model, 1.0) * len(j.train_rows))


def run_fits_serial(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    run: RunFolder,
    seed: int,
    on_done=None,
    lives: np.ndarray | None = None,
) -> None:
    """The same fits one after another in this process, one thread each: the baseline
    `benchmarks/bench_train.py` compares the Ray run with."""
    for job in unfinished(jobs, run, on_done):
        result = fit_one(job, x, y, 1, seed, lives)
        run.save_fit(result)
        if on_done is not None:
            on_done(job, result.record)


def run_fits(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    run: RunFolder,
    ray_address: str | None,
    seed: int,
    on_done=None,
    lives: np.ndarray | None = None,
    shared: dict | None = None,
) -> None:
    """Run every unfinished job as a Ray task (one CPU each, spread over the nodes,
    retried when its node dies); checkpoint each result here, in the driver, and call
    on_done(job, record) as it arrives (record None: a checkpoint already there). Every
    job fits and predicts rows of the one matrix `x`; `lives` (optional) weights each
    fit's rows, see `fit_one`. `shared` (a dict the caller keeps across calls) holds the
    object-store references, so the matrix goes into Ray's object store once per run."""
    todo = unfinished(jobs, run, on_done)
    if not todo:
        return
    by_name = {j.name: j for j in todo}
    ray = init_ray(ray_address)
    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, scheduling_strategy="SPREAD")(
        fit_on_node
    )
    shared = {} if shared is None else shared
    if "refs" not in shared:
        shared["refs"] = (ray.put(x), ray.put(y), ray.put(lives))
    x_ref, y_ref, w_ref = shared["refs"]
    pending = [remote.remote(j, x_ref, y_ref, 1, seed, w_ref) for j in todo]
    written: set[str] = set()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        result = ray.get(ready[0])
        if result.name in written:  # one checkpoint per fit, whatever Ray delivers
            continue
        run.save_fit(result)
        written.add(result.name)
        if on_done is not None:
            on_done(by_name[result.name], result.record)
