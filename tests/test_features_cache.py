"""Numba's kernel cache: set only by an explicit call, in a folder named after the sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import features.cache as cache

ROOT = Path(__file__).resolve().parent.parent


def test_importing_features_leaves_numba_config_alone():
    """Importing the features modules (kernels included) changes no Numba setting."""
    code = (
        "import numba; before = numba.config.CACHE_DIR; "
        "import features, features.catalog, features.compute, features.kernels; "
        "assert numba.config.CACHE_DIR == before, numba.config.CACHE_DIR"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def test_cache_folder_follows_every_kernel_source(tmp_path, monkeypatch):
    """An edit to any kernel source (a building block, the driver or the kind numbers)
    names a new cache folder; an edit elsewhere in features/ does not."""
    copy = tmp_path / "features"
    shutil.copytree(ROOT / "features", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_HERE", copy)
    digests = [cache.kernel_digest()]
    for name in ("nb_common.py", "kernels.py", "kinds.py", "compute.py"):
        with (copy / name).open("a", encoding="utf-8") as handle:
            handle.write("\n# edited\n")
        digests.append(cache.kernel_digest())
    assert len(set(digests[:4])) == 4
    assert digests[4] == digests[3]


def test_configure_uses_the_digest_folder_unless_numba_cache_dir_is_set(monkeypatch, tmp_path):
    """Without NUMBA_CACHE_DIR the folder is ~/.cache/stockml/numba/<digest>; with it, it wins."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(cache.Path, "home", lambda: tmp_path)
    monkeypatch.setitem(sys.modules, "numba", None)  # as if Numba were not imported yet
    assert (
        cache.configure_numba_cache() == tmp_path / ".cache/stockml/numba" / cache.kernel_digest()
    )
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.configure_numba_cache() == tmp_path / "mine"


# A fresh Python process on a given Numba cache folder: compiles (or loads) the two feature
# drivers as compute_all_nb does, computes every feature of a small two-symbol input and
# reports what a child compiled, what it loaded and how many versions each kernel it
# compiled itself has.
_CHILD = """
import json, sys
import numpy as np
from numba.core.registry import CPUDispatcher
import features.kernels as k
from tests.test_features_cache import small_input

in_child = list(k.compile_kernels())
*args, out = small_input()
k.compute_all_nb(*args, out)
np.save(sys.argv[1], out)
versions = {
    f"{name}.{attr}": len(obj.signatures)
    for name, module in list(sys.modules.items())
    if name.startswith("features.")
    for attr, obj in vars(module).items()
    if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == name
}
stats = {n: d.stats for n, d in k.DRIVERS.items()}
print(json.dumps({
    "in_child": in_child,
    "versions": versions,
    "hits": {n: sum(s.cache_hits.values()) for n, s in stats.items()},
    "misses": {n: sum(s.cache_misses.values()) for n, s in stats.items()},
}))
"""


def small_input():
    """(o, h, l, c, v, offsets, kinds, params, out) for every catalog feature of two short
    random-walk symbols, the second starting with NaN bars; out empty."""
    import numpy as np

    from features.catalog import recipe_arrays

    rng = np.random.default_rng(14)
    c = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 600)))
    c[300:305] = np.nan
    spread = c * rng.uniform(0.001, 0.03, c.shape)
    o = c + rng.uniform(-0.5, 0.5, c.shape) * spread
    h = np.maximum(o, c) + spread
    lo = np.minimum(o, c) - spread
    v = rng.uniform(1e5, 1e7, c.shape)
    kinds, params = recipe_arrays()
    out = np.empty((len(kinds), c.shape[0]))
    return o, h, lo, c, v, np.array([0, 300, 600], dtype=np.int64), kinds, params, out


def _child(cache_dir: Path, out_path: Path) -> dict:
    import json

    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# Two cold compiles: ~30 s on 2 idle cores, ten times that on a host loaded 10x over.
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_cold_start_compiles_in_two_processes_and_warm_start_loads(tmp_path):
    """Into an empty cache, a child process compiles the trend driver while the first
    compiles the price driver (each kernel in one version), then loads the child's; a
    second process loads both and starts no child. Their features are bit-identical to
    the kernels of this test session."""
    import numpy as np

    from features.kernels import compute_all_nb

    cold = _child(tmp_path / "cache", tmp_path / "cold.npy")
    assert cold["in_child"] == ["trend"]
    assert cold["hits"] == {"trend": 1, "price": 0}
    assert cold["misses"] == {"trend": 0, "price": 1}
    many = {name: n for name, n in cold["versions"].items() if n > 1}
    assert many == {}, f"kernels compiled in more than one version: {many}"
    assert cold["versions"]["features.nb_common.sma_nb"] == 1

    warm = _child(tmp_path / "cache", tmp_path / "warm.npy")
    assert warm["in_child"] == []
    assert warm["hits"] == {"trend": 1, "price": 1}

    *args, out = small_input()
    compute_all_nb(*args, out)
    assert np.isfinite(out[:, 299]).all()  # the first symbol's last day: every feature
    for name in ("cold", "warm"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), out, err_msg=name)
