"""Numba's kernel cache: set only by an explicit call, in a folder named after the sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
