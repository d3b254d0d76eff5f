"""Where Numba keeps the compiled feature kernels, set once by the program that runs them.

Numba's on-disk cache only notices edits to a kernel's own file, not to the kernels it
calls in other files (nor to the `Kind` numbers it compares against); so the cache lives
in a folder named after a hash of every kernel source, and an edit anywhere compiles
afresh instead of reusing stale machine code.

Numba fixes a kernel's cache folder when the kernel's module is imported, from the
process-wide `numba.config.CACHE_DIR` (read from NUMBA_CACHE_DIR); so
`configure_numba_cache()` is called before the first kernel import, by each entry point
(the CLI's `main`, tests/conftest.py, the benchmarks), never as a side effect of importing
a library module. A NUMBA_CACHE_DIR set by the user wins (the features benchmark uses it
to time a compile into an empty folder).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_HERE = Path(__file__).parent


def kernel_digest() -> str:
    """12 hex digits naming the current kernel sources (nb_*.py, kernels.py, kinds.py)."""
    sources = [*sorted(_HERE.glob("nb_*.py")), _HERE / "kernels.py", _HERE / "kinds.py"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]


# A cold cache takes ~20 MB of machine code; a folder already holding it needs no room.
CACHE_NEED = 64 * 2**20


def cache_folder() -> Path:
    """The first place that can take the kernel cache (stockml/places.py): a folder that
    already holds compiled kernels, else ~/.cache/stockml/numba/<digest>, else this
    user's folder in TMPDIR, saying so on stderr (the kernels compile there once, ~50 s
    of CPU). InputError naming both when neither can: a 200-line ENOSPC traceback from
    Numba mid-run otherwise."""
    from stockml.errors import InputError
    from stockml.places import cannot_take, home, user_temp

    digest = kernel_digest()
    candidates = [user_temp("numba", digest)]
    if home() is not None:
        candidates.insert(0, home() / ".cache" / "stockml" / "numba" / digest)
    reasons = []
    for folder in candidates:
        warm = folder.is_dir() and any(folder.glob("*/*.nbi"))
        why = None if warm else cannot_take(folder, CACHE_NEED)
        if why is None:
            if reasons:
                print(
                    f"stockml: note: Numba's kernel cache goes to {folder} ({reasons[0]})",
                    file=sys.stderr,
                )
            return folder
        reasons.append(f"{folder}: {why}")
    raise InputError(
        f"no folder can take Numba's kernel cache ({'; '.join(reasons)}): free space or "
        "set NUMBA_CACHE_DIR to a folder with room"
    )


def configure_numba_cache() -> Path:
    """Point Numba's cache at `cache_folder()`, unless NUMBA_CACHE_DIR is set; returns the
    folder in use. Call before the first kernel import."""
    folder = os.environ.get("NUMBA_CACHE_DIR") or str(cache_folder())
    # Through the environment, without importing Numba (a third of a second on every
    # command's start, `--help` included): Numba reads it when first imported, and child
    # processes (Ray workers, subprocesses of tests) inherit the same folder.
    os.environ["NUMBA_CACHE_DIR"] = folder
    numba = sys.modules.get("numba")
    if numba is not None:
        loaded = sorted(
            m for m in sys.modules if m.startswith(("features.nb_", "features.kernels"))
        )
        if loaded and folder != numba.config.CACHE_DIR:
            raise RuntimeError(f"configure_numba_cache() must run before importing {loaded[0]}")
        numba.config.CACHE_DIR = folder
    return Path(folder)


def kernels_cached() -> bool:
    """Whether Numba's on-disk cache holds both feature drivers compiled from the current
    sources (imports the kernels, so Numba, but compiles nothing)."""
    from features.kernels import DRIVERS, driver_cached

    return all(driver_cached(name) for name in DRIVERS)


def precompile() -> None:
    """Compile the feature kernels into the configured cache now (bootstrap.sh's last step,
    so that the first stockml command loads them); only loads them when already there."""
    configure_numba_cache()
    from features.kernels import compile_kernels

    compile_kernels()
