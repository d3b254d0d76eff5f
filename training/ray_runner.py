"""Every (model, fold) fit as a Ray task, checkpointed by the driver as it completes.

Nothing a task needs comes from the driver's disk, so the same code runs on a local Ray or
on a cluster whose workers cannot see the run folder or the store: the training matrix,
labels and the labels' lives (for sample weights) go into Ray's object store once (tasks
read them zero-copy), and a task returns its fitted model (pickled bytes), its predictions
and where it ran (node id, host, seconds). Only the driver writes: `<name>.pkl` (the
model), `<name>.npy` (its predictions), `<name>.record` (its FitRecord, as JSON), then a
manifest `<name>.json` of their SHA-256. A rerun skips fits whose files match their
manifest, and a hash is checked before any model is loaded.

Each task reserves one CPU and caps its model's threads (n_jobs and the OpenMP/BLAS pools)
to it, so no machine's cores are oversubscribed; tasks are spread over the cluster's nodes.
A task lost with its node (or its worker process) is rerun by Ray up to TASK_RETRIES
times; each result reaches the driver once and the driver writes each checkpoint once, so a
retry cannot leave two copies of a fit. An exception raised by a fit itself is not retried:
it would fail again.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from stockml.files import atomic_write, atomic_write_text, sha256

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# How long `check_ray_address` waits for the cluster's GCS port to accept a connection.
CONNECT_TIMEOUT_S = 5.0
# Reruns of a task whose worker or node died (Ray's max_retries); a fit that raises is not
# retried. Three covers a node lost mid-run and one more while the retry runs.
TASK_RETRIES = 3


@dataclass(frozen=True)
class FitJob:
    model: str
    fold: str  # "b<j>": fitted on the days before block j, predicts it; "live": every day
    train_rows: np.ndarray  # rows of the sample matrix to fit on
    predict_rows: np.ndarray  # rows of the same matrix to predict (may be empty)
    params: tuple[tuple[str, Any], ...] = ()  # keyword overrides for the model's factory


@dataclass(frozen=True)
class FitRecord:
    """Where and how one fit ran, as `training_fits` stores it. node_id is Ray's hex node
    id (None for the serial path, or a checkpoint written before fits were recorded);
    seconds is the fit plus its predictions on that node; rows the rows fitted on."""

    model: str
    fold: str
    node_id: str | None
    host: str | None
    seconds: float | None
    rows: int


@dataclass(frozen=True)
class FitResult:
    """What a fit hands back to the driver: the fitted model as pickled bytes (written to
    the checkpoint unchanged), its (len(predict_rows), 3) class probabilities, its record."""

    name: str
    model: bytes
    proba: np.ndarray
    record: FitRecord


def checkpoint_name(job: FitJob) -> str:
    return f"{job.model}__{job.fold}"


def finished(folder: Path, job: FitJob) -> bool:
    manifest = folder / f"{checkpoint_name(job)}.json"
    if not manifest.exists():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return all(
        (folder / name).exists() and sha256(folder / name) == digest
        for name, digest in recorded.items()
    )


def load_predictions(folder: Path, job: FitJob) -> np.ndarray:
    return np.load(folder / f"{checkpoint_name(job)}.npy")


def fit_records(folder: Path, jobs: list[FitJob]) -> list[FitRecord]:
    """The record of each finished job, in the order of `jobs` (the rows of
    `training_fits`); a checkpoint from before fits were recorded gives a record with no
    node, host or time."""
    records = []
    for job in jobs:
        path = folder / f"{checkpoint_name(job)}.record"
        if path.exists():
            records.append(FitRecord(**json.loads(path.read_text())))
        else:
            records.append(FitRecord(job.model, job.fold, None, None, None, len(job.train_rows)))
    return records


def load_model(folder: Path, name: str) -> Any:
    """Unpickle a checkpointed model only after its hash matches the manifest."""
    from stockml.errors import StoreError

    path = folder / f"{name}.pkl"
    try:
        manifest = json.loads((folder / f"{name}.json").read_text())
        recorded = manifest[path.name]
        actual = sha256(path)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise StoreError(f"model {path} is missing or incomplete: rerun `stockml train`") from exc
    if actual != recorded:
        raise StoreError(f"checkpoint {path} does not match its recorded hash; refusing to load")
    with path.open("rb") as handle:
        return pickle.load(handle)


def write_checkpoint(folder: Path, name: str, payload: dict[str, Any]) -> None:
    """Write `<name><suffix>` for each (suffix, object) in `payload` (bytes as they are,
    .npy as an array, anything else pickled), each atomically, then the manifest of their
    SHA-256, last: a checkpoint without its manifest is not finished. Writing the same
    payload again gives the same files (idempotent)."""
    files = {}
    for suffix, obj in payload.items():
        final = folder / f"{name}{suffix}"
        if isinstance(obj, bytes):
            atomic_write(final, lambda handle, obj=obj: handle.write(obj))
        elif suffix == ".npy":
            atomic_write(final, lambda handle, obj=obj: np.save(handle, obj))
        else:
            atomic_write(final, lambda handle, obj=obj: pickle.dump(obj, handle))
        files[final.name] = sha256(final)
    atomic_write_text(folder / f"{name}.json", json.dumps(files))


def save_model(folder: Path, name: str, model: Any) -> None:
    """Pickle a model with its manifest, as fits are saved (hash-checked on load)."""
    write_checkpoint(folder, name, {".pkl": model})


def weights_of(lives: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Uniqueness weights of `rows`, counting only their own labels' overlaps."""
    from training.weights import uniqueness_weights

    part = lives[rows]
    return uniqueness_weights(part[:, 0], part[:, 1], part[:, 2], part[:, 3])


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
    label), rows
    are weighted by their label's average uniqueness among the job's own training rows
    (training/weights.py): computed per fit, so no label outside the fit (a purged or
    test row) shapes a training row's weight; a job whose params say `weighted=False` (a
    tuning candidate) is fitted unweighted."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS, fit_model

    started = time.perf_counter()
    with threadpool_limits(threads), warnings.catch_warnings():
        # The MLP's iteration cap is a time budget, not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        params = dict(job.params)
        weighted = params.pop("weighted", True)  # training/tuning.py's UNWEIGHTED candidate
        model = BASE_MODELS[job.model](threads, seed, **params)
        w = None if lives is None or not weighted else weights_of(lives, job.train_rows)
        fit_model(model, x[job.train_rows], y[job.train_rows], w)
        proba = (
            model.predict_proba(x[job.predict_rows]) if len(job.predict_rows) else np.empty((0, 3))
        )
    seconds = round(time.perf_counter() - started, 3)
    record = FitRecord(
        job.model, job.fold, None, socket.gethostname(), seconds, len(job.train_rows)
    )
    return FitResult(checkpoint_name(job), pickle.dumps(model), proba, record)


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


def save_fit(folder: Path, result: FitResult) -> None:
    """The driver's checkpoint of one fit: model bytes, predictions, record, manifest."""
    record = json.dumps(asdict(result.record)).encode()
    payload = {".pkl": result.model, ".npy": result.proba, ".record": record}
    write_checkpoint(folder, result.name, payload)


def check_ray_address(address: str | None) -> None:
    """Fail fast, in one line, when `address` (else $RAY_ADDRESS) is a host:port that no
    Ray cluster listens on: ray.init would retry for minutes. Other forms (`auto`,
    `ray://...`) are left to Ray. Raises InputError."""
    from stockml.errors import InputError

    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        return
    host, _, port = address.rpartition(":")
    if not host or "/" in host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InputError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}): "
            "check --ray-address or RAY_ADDRESS"
        ) from exc


def init_ray(address: str | None) -> Any:
    """Local Ray on this machine's cores, or the cluster at `address` / $RAY_ADDRESS."""
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    return ray


def unfinished(jobs: list[FitJob], folder: Path, on_done=None) -> list[FitJob]:
    """Jobs without a valid checkpoint, costliest first (longest-processing-time order keeps
    every core busy to the end); finished ones are reported as skipped."""
    from training.models import FIT_COST

    todo = [j for j in jobs if not finished(folder, j)]
    waiting = {checkpoint_name(j) for j in todo}
    for job in jobs:
        if checkpoint_name(job) not in waiting and on_done is not None:
            on_done(checkpoint_name(job), skipped=True)
    return sorted(todo, key=lambda j: -FIT_COST.get(j.model, 1.0) * len(j.train_rows))


def run_fits_serial(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    folder: Path,
    seed: int,
    on_done=None,
    lives: np.ndarray | None = None,
) -> None:
    """The same fits one after another in this process, one thread each: the baseline
    `benchmarks/bench_train.py` compares the Ray run with."""
    for job in unfinished(jobs, folder, on_done):
        result = fit_one(job, x, y, 1, seed, lives)
        save_fit(folder, result)
        if on_done is not None:
            on_done(result.name, skipped=False)


def run_fits(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    folder: Path,
    ray_address: str | None,
    seed: int,
    on_done=None,
    lives: np.ndarray | None = None,
) -> None:
    """Run every unfinished job as a Ray task (one CPU each, spread over the nodes,
    retried when its node dies); checkpoint each result here, in the driver, and call
    on_done(name) as it arrives. Every job fits and predicts rows of the one matrix `x`;
    `lives` (optional) weights each fit's rows, see `fit_one`."""
    todo = unfinished(jobs, folder, on_done)
    if not todo:
        return
    ray = init_ray(ray_address)
    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, scheduling_strategy="SPREAD")(
        fit_on_node
    )
    x_ref, y_ref, w_ref = ray.put(x), ray.put(y), ray.put(lives)
    pending = [remote.remote(j, x_ref, y_ref, 1, seed, w_ref) for j in todo]
    written: set[str] = set()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        result = ray.get(ready[0])
        if result.name in written:  # one checkpoint per fit, whatever Ray delivers
            continue
        save_fit(folder, result)
        written.add(result.name)
        if on_done is not None:
            on_done(result.name, skipped=False)
