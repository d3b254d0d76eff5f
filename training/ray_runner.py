"""Every (model, fold) fit as a Ray task, checkpointed as it completes.

The training matrix is put into Ray's object store once; tasks receive references and read
it zero-copy. Each task reserves one CPU and caps its model's threads (n_jobs and the
OpenMP/BLAS pools) to it, so the machine's cores are not oversubscribed. A finished fit
leaves `<name>.pkl` (the model) and `<name>.npy` (its predictions) plus a manifest with
their SHA-256; a rerun skips fits whose files match their manifest, and a hash is checked
before any model is loaded.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from stockml.files import atomic_write, atomic_write_text, sha256

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class FitJob:
    model: str
    fold: str  # "b<j>": fitted on the days before block j, predicts it; "live": every day
    train_rows: np.ndarray  # rows of the sample matrix to fit on
    predict_rows: np.ndarray  # rows of the same matrix to predict (may be empty)
    params: tuple[tuple[str, Any], ...] = ()  # keyword overrides for the model's factory


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
    """Write `<name><suffix>` for each (suffix, object) in `payload` (.pkl pickled, .npy
    as an array), each atomically, then the manifest of their SHA-256, last: a checkpoint
    without its manifest is not finished."""
    files = {}
    for suffix, obj in payload.items():
        final = folder / f"{name}{suffix}"
        if suffix == ".npy":
            atomic_write(final, lambda handle, obj=obj: np.save(handle, obj))
        else:
            atomic_write(final, lambda handle, obj=obj: pickle.dump(obj, handle))
        files[final.name] = sha256(final)
    atomic_write_text(folder / f"{name}.json", json.dumps(files))


def save_model(folder: Path, name: str, model: Any) -> None:
    """Pickle a model with its manifest, as fits are saved (hash-checked on load)."""
    write_checkpoint(folder, name, {".pkl": model})


def fit_one(
    job: FitJob,
    x: np.ndarray,
    y: np.ndarray,
    folder: str,
    threads: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> str:
    """Fit one model on its rows, predict, and checkpoint both atomically."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS, fit_model

    name = checkpoint_name(job)
    with threadpool_limits(threads), warnings.catch_warnings():
        # The MLP's iteration cap is a time budget, not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BASE_MODELS[job.model](threads, seed, **dict(job.params))
        w = None if weights is None else weights[job.train_rows]
        fit_model(model, x[job.train_rows], y[job.train_rows], w)
        proba = (
            model.predict_proba(x[job.predict_rows]) if len(job.predict_rows) else np.empty((0, 3))
        )
    write_checkpoint(Path(folder), name, {".pkl": model, ".npy": proba})
    return name


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
    both cores busy to the end); finished ones are reported as skipped."""
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
    weights: np.ndarray | None = None,
) -> None:
    """The same fits one after another in this process, one thread each: the baseline
    `benchmarks/bench_train.py` compares the Ray run with."""
    for job in unfinished(jobs, folder, on_done):
        name = fit_one(job, x, y, str(folder), 1, seed, weights)
        if on_done is not None:
            on_done(name, skipped=False)


def run_fits(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    folder: Path,
    ray_address: str | None,
    seed: int,
    on_done=None,
    weights: np.ndarray | None = None,
) -> None:
    """Run every unfinished job as a Ray task (one CPU each); call on_done(name) as each
    completes. Every job fits and predicts rows of the one matrix `x`."""
    todo = unfinished(jobs, folder, on_done)
    if not todo:
        return
    ray = init_ray(ray_address)
    remote = ray.remote(num_cpus=1)(fit_one)
    x_ref, y_ref, w_ref = ray.put(x), ray.put(y), ray.put(weights)
    pending = [remote.remote(j, x_ref, y_ref, str(folder), 1, seed, w_ref) for j in todo]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        name = ray.get(ready[0])
        if on_done is not None:
            on_done(name, skipped=False)
