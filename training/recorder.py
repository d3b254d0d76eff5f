"""The run folder's one owner: every file under `runs/<run id>/` is written and read here.

    runs/<run id>/
        params.json                 the run's TrainConfig, flat (`TrainConfig.params`), and
                                    the samples it trained on
        config.json                 the same config, nested (`TrainConfig.as_dict`)
        fits/<model>__<fold>.pkl    one checkpoint per fit (training/folds.py names them):
             .npy .record .json     the model, its predictions, where it ran, its manifest;
                                    taken over (hard-linked, signed anew) from an earlier
                                    run of the same fit set (`adopt_fits`)
        <name>.pkl + <name>.json    models: `meta__b<j>` (each window's stack) and
                                    `signal_model` (the live model `stockml signals` uses)
        <name>.npy, <name>.json     arrays and documents, e.g. `test_probabilities.npy`,
                                    `track_record.json`
        report.md, *.png            the report and its plots

Writers (the training driver; Ray tasks never write) and readers (`stockml signals`, the
report, the web page) go through `RunFolder`, opened by run id under a runs root they
were given (`runs_root(db_path)`: the `runs` folder beside the store), never by a path read
from the store.

Every pickle and checkpoint is written with a manifest `<name>.json`: the SHA-256 of each
file, the run id and the config digest, signed with HMAC-SHA256 under this machine's
signing key (`signing_key`). A model is unpickled only after its manifest's signature, run
id and hashes all check out, so a file copied from another run, a swapped model, or a
pickle whose manifest was recomputed by someone without the key is refused (StoreError,
one line), never loaded. Every file is written atomically (stockml/files.py); the
manifest last, so a checkpoint without one is not finished.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stockml.errors import InputError, StoreError
from stockml.files import atomic_write, atomic_write_text, sha256

RUN_ID = re.compile(r"[0-9a-f]{16}")
KEY_ENV = "STOCKML_SIGNING_KEY"


@dataclass(frozen=True)
class FitRecord:
    """Where and how one fit ran, as `training_fits` stores it. node_id is Ray's hex node
    id (None for the serial path); seconds is the fit plus its predictions on that node;
    rows the rows fitted on."""

    model: str
    fold: str
    node_id: str | None
    host: str | None
    seconds: float | None
    rows: int


@dataclass(frozen=True)
class FitResult:
    """What a fit hands back to the driver: the fitted model as pickled bytes (written to
    the checkpoint unchanged), its (len(predict_rows), 3) class probabilities, its record;
    `name` names the checkpoint (`FitJob.name`)."""

    name: str
    model: bytes
    proba: np.ndarray
    record: FitRecord


def runs_root(db_path: Path) -> Path:
    """The runs folder of the store at `db_path`: `<its folder>/runs`."""
    return Path(db_path).resolve().parent / "runs"


def key_path() -> Path:
    """Where the signing key lives: $STOCKML_SIGNING_KEY, else
    `$XDG_CONFIG_HOME/stockml/signing.key` (default `~/.config/stockml/signing.key`)."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "stockml" / "signing.key"


def signing_key(create: bool = False) -> bytes:
    """This machine's 32-byte run signing key, made (mode 0600) when `create` and absent.
    Raises InputError, naming the file, when it cannot be read or made, and StoreError
    when it does not exist and `create` is false (nothing was ever signed here)."""
    path = key_path()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"no run signing key at {path}: this machine trained no run (set "
                f"{KEY_ENV} to the key file of the machine that did, or train again)"
            ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the run signing key {path}: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key
    except FileExistsError:  # another process made it first
        return signing_key(create=False)
    except OSError as exc:
        raise InputError(
            f"cannot create the run signing key {path} ({exc.strerror or exc}): set "
            f"{KEY_ENV} to a writable file"
        ) from exc


def _signature(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RunFolder:
    """`runs/<run_id>/` of one run. `config_digest` is what the manifests it writes carry
    (None when opened for reading: each manifest's own is then read)."""

    path: Path
    run_id: str
    config_digest: str | None = None

    @classmethod
    def create(
        cls,
        root: Path,
        run_id: str,
        config: Any,
        fresh: bool = False,
        samples: int = 0,
        fit_id: str | None = None,
    ) -> RunFolder:
        """The folder of a run about to be fitted (`config` a TrainConfig): emptied first
        when `fresh`, with params.json (naming `fit_id`, its fit set) and config.json
        written."""
        folder = cls(Path(root) / _checked(run_id), run_id, config.digest())
        if fresh and folder.path.exists():
            shutil.rmtree(folder.path)
        folder.fits.mkdir(parents=True, exist_ok=True)
        signing_key(create=True)
        folder.save_json("params", {**config.params(), "samples": samples, "fit_id": fit_id})
        folder.save_json("config", config.as_dict())
        return folder

    def same_fits(self, fit_id: str) -> list[RunFolder]:
        """The other runs under this run's root whose params.json names fit set `fit_id`
        (the same base fits: `TrainConfig.fit_digest` on the same samples), newest
        first."""
        found = []
        for params in self.path.parent.glob("*/params.json"):
            folder = params.parent
            if folder == self.path or not RUN_ID.fullmatch(folder.name):
                continue
            try:
                named = json.loads(params.read_text()).get("fit_id")
            except (OSError, json.JSONDecodeError, AttributeError):
                continue
            if named == fit_id:
                found.append((params.stat().st_mtime_ns, folder.name))
        return [RunFolder(self.path.parent / name, name) for _, name in sorted(found)[::-1]]

    def adopt_fits(self, source: RunFolder) -> int:
        """Take every finished fit of run `source` that this run lacks: its files hard-linked
        (copied across file systems) after its manifest checks out, then a manifest naming
        this run, signed here. Only for a source with this run's fit set (`same_fits`).
        Returns how many were taken."""
        taken = 0
        for manifest_path in sorted(source.fits.glob("*.json")):
            name = manifest_path.name[: -len(".json")]
            if ".tmp." in name or self.fit_done(name) or not source.fit_done(name):
                continue
            files = json.loads(manifest_path.read_text())["files"]
            for file in files:
                target = self.fits / file
                target.unlink(missing_ok=True)
                try:
                    os.link(source.fits / file, target)
                except OSError:
                    shutil.copy2(source.fits / file, target)
            self._sign(self.fits, name, files)
            taken += 1
        return taken

    @classmethod
    def open(cls, root: Path, run_id: str) -> RunFolder:
        """An existing run's folder under `root`. Raises StoreError when it is missing."""
        folder = cls(Path(root) / _checked(run_id), run_id)
        if not folder.path.is_dir():
            raise StoreError(
                f"run {run_id} has no folder under {root}: its files were moved or deleted "
                "(run `stockml train` again)"
            )
        return folder

    @property
    def fits(self) -> Path:
        return self.path / "fits"

    def file(self, name: str) -> Path:
        """The path of a document of the run (report.md, a plot) for readers to serve."""
        if "/" in name or name.startswith("."):
            raise InputError(f"not a file name of a run folder: {name!r}")
        return self.path / name

    # -- manifests ---------------------------------------------------------------------

    def _write(self, folder: Path, name: str, payload: dict[str, Any]) -> None:
        """`<name><suffix>` for each (suffix, object): bytes as they are, .npy as an array,
        anything else pickled; then the signed manifest, last. Idempotent."""
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
        self._sign(folder, name, files)

    def _sign(self, folder: Path, name: str, files: dict[str, str]) -> None:
        """`<name>.json` in `folder`: `files` (file name -> SHA-256) with this run's id and
        config digest, signed with this machine's key (HMAC-SHA256); written last."""
        body = {"run_id": self.run_id, "config_digest": self.config_digest, "files": files}
        manifest = {**body, "signature": _signature(signing_key(create=True), body)}
        atomic_write_text(folder / f"{name}.json", json.dumps(manifest, sort_keys=True))

    def _verified(self, folder: Path, name: str) -> dict[str, Any]:
        """The manifest of `name`, after checking its signature, run id and every file's
        hash. Raises StoreError saying what failed."""
        path = folder / f"{name}.json"
        try:
            manifest = json.loads(path.read_text())
            body = {k: manifest[k] for k in ("run_id", "config_digest", "files")}
            signature = manifest["signature"]
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{path} is missing or from an earlier version: run `stockml train` again"
            ) from exc
        if not hmac.compare_digest(signature, _signature(signing_key(), body)):
            raise StoreError(
                f"{path} is not signed by this machine's key ({key_path()}): refusing to "
                "load it (tampered, or trained elsewhere)"
            )
        if body["run_id"] != self.run_id:
            raise StoreError(
                f"{folder / name} belongs to run {body['run_id']}, not run {self.run_id}: "
                "refusing to load it"
            )
        for file, digest in body["files"].items():
            if not (folder / file).exists() or sha256(folder / file) != digest:
                raise StoreError(
                    f"{folder / file} does not match its recorded hash; refusing to load"
                )
        return manifest

    def _finished(self, folder: Path, name: str) -> bool:
        try:
            self._verified(folder, name)
        except StoreError:
            return False
        return True

    # -- fits ----------------------------------------------------------------------------

    def fit_done(self, name: str) -> bool:
        """Whether fit `name` (`FitJob.name`) has a complete checkpoint of this run."""
        return self._finished(self.fits, name)

    def save_fit(self, result: FitResult) -> None:
        record = json.dumps(asdict(result.record)).encode()
        payload = {".pkl": result.model, ".npy": result.proba, ".record": record}
        self._write(self.fits, result.name, payload)

    def fit_predictions(self, name: str) -> np.ndarray:
        """Fit `name`'s (len(predict_rows), 3) predictions (hash-checked)."""
        self._verified(self.fits, name)
        return np.load(self.fits / f"{name}.npy")

    def fit_model(self, name: str) -> Any:
        self._verified(self.fits, name)
        with (self.fits / f"{name}.pkl").open("rb") as handle:
            return pickle.load(handle)

    def fit_record(self, name: str) -> FitRecord:
        return FitRecord(**json.loads((self.fits / f"{name}.record").read_text()))

    def finished_fits(self, names: list[str]) -> list[str]:
        return [n for n in names if self.fit_done(n)]

    # -- models, arrays, documents -------------------------------------------------------

    def save_model(self, name: str, model: Any) -> None:
        self._write(self.path, name, {".pkl": model})

    def load_model(self, name: str) -> Any:
        """Unpickle model `name` only after its manifest checks out (module docstring)."""
        self._verified(self.path, name)
        with (self.path / f"{name}.pkl").open("rb") as handle:
            return pickle.load(handle)

    def model_stamp(self, name: str) -> int:
        """The model file's modification time (ns): a cache key for readers."""
        return (self.path / f"{name}.pkl").stat().st_mtime_ns

    def save_array(self, name: str, array: np.ndarray) -> None:
        atomic_write(self.path / f"{name}.npy", lambda handle: np.save(handle, array))

    def load_array(self, name: str) -> np.ndarray:
        return np.load(self.path / f"{name}.npy")

    def save_json(self, name: str, value: Any) -> None:
        atomic_write_text(self.path / f"{name}.json", json.dumps(value, indent=1, default=_plain))

    def load_json(self, name: str) -> Any:
        """A document written by `save_json`. Raises StoreError when it is missing."""
        try:
            return json.loads((self.path / f"{name}.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"run {self.run_id} has no {name}.json (trained by an earlier version?): "
                "run `stockml train` again"
            ) from exc

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.file(name), text)


def _checked(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InputError(f"not a run id: {run_id!r} (16 hex digits)")
    return run_id


def _plain(value: Any) -> Any:
    """JSON for NumPy scalars, arrays and dates."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
