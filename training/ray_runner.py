"""Every (model, fold) fit as a Ray task, checkpointed as it completes.

The training matrix is put into Ray's object store once; tasks receive references and read
it zero-copy. Each task reserves one CPU and caps its model's threads (n_jobs and the
OpenMP/BLAS pools) to it, so the machine's cores are not oversubscribed. A finished fit
leaves `<name>.pkl` (the model) and `<name>.npy` (its predictions) plus a manifest with
their SHA-256; a rerun skips fits whose files match their manifest, and a hash is checked
before any model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class FitJob:
    model: str
    fold: str  # "0".."k-1" for out-of-fold fits, "full" for the refit on all training days
    train_rows: np.ndarray
    predict_rows: np.ndarray  # rows of the matrix passed as `predict_on`


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def save_model(folder: Path, name: str, model: Any) -> None:
    """Pickle a model with its manifest (written last, atomically), as fits are saved."""
    final = folder / f"{name}.pkl"
    temp = final.with_suffix(".pkl.tmp")
    with temp.open("wb") as handle:
        pickle.dump(model, handle)
    temp.replace(final)
    manifest = folder / f"{name}.json"
    manifest.with_suffix(".json.tmp").write_text(json.dumps({final.name: sha256(final)}))
    manifest.with_suffix(".json.tmp").replace(manifest)


def fit_one(
    job: FitJob,
    x: np.ndarray,
    y: np.ndarray,
    predict_on: np.ndarray,
    folder: str,
    threads: int,
    seed: int,
) -> str:
    """Fit one model on its rows, predict, and checkpoint both atomically."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS

    out = Path(folder)
    name = checkpoint_name(job)
    with threadpool_limits(threads), warnings.catch_warnings():
        # The MLP's iteration cap is a time budget, not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BASE_MODELS[job.model](threads, seed)
        model.fit(x[job.train_rows], y[job.train_rows])
        proba = model.predict_proba(predict_on[job.predict_rows])
    files = {}
    for suffix, write in (
        (".pkl", lambda h: pickle.dump(model, h)),
        (".npy", lambda h: np.save(h, proba)),
    ):
        final = out / f"{name}{suffix}"
        temp = final.with_suffix(suffix + ".tmp")
        with temp.open("wb") as handle:
            write(handle)
        temp.replace(final)
        files[final.name] = sha256(final)
    manifest = out / f"{name}.json"
    temp = manifest.with_suffix(".json.tmp")
    temp.write_text(json.dumps(files))
    temp.replace(manifest)  # the manifest last: a fit without one is not finished
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


def target_of(job: FitJob) -> str:
    """Which matrix a job predicts on: the test period for the refit, else the training one."""
    return "full" if job.fold == "full" else "train"


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
    predict_on: dict[str, np.ndarray],
    folder: Path,
    seed: int,
    on_done=None,
) -> None:
    """The same fits one after another in this process, one thread each: the baseline
    `benchmarks/bench_train.py` compares the Ray run with."""
    for job in unfinished(jobs, folder, on_done):
        name = fit_one(job, x, y, predict_on[target_of(job)], str(folder), 1, seed)
        if on_done is not None:
            on_done(name, skipped=False)


def run_fits(
    jobs: list[FitJob],
    x: np.ndarray,
    y: np.ndarray,
    predict_on: dict[str, np.ndarray],
    folder: Path,
    ray_address: str | None,
    seed: int,
    on_done=None,
) -> None:
    """Run every unfinished job as a Ray task (one CPU each); call on_done(name) as each
    completes. `predict_on[target_of(job)]` is the matrix the job predicts on."""
    todo = unfinished(jobs, folder, on_done)
    if not todo:
        return
    ray = init_ray(ray_address)
    remote = ray.remote(num_cpus=1)(fit_one)
    x_ref, y_ref = ray.put(x), ray.put(y)
    targets = {key: ray.put(m) for key, m in predict_on.items()}
    pending = [
        remote.remote(j, x_ref, y_ref, targets[target_of(j)], str(folder), 1, seed) for j in todo
    ]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        name = ray.get(ready[0])
        if on_done is not None:
            on_done(name, skipped=False)
