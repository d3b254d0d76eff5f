"""Features: the 179-indicator catalog as Numba kernels over all symbols at once.

Numba's on-disk cache only notices edits to a kernel's own file, not to the kernels it
calls in other files; so the cache lives in a folder named after a hash of every kernel
source, and an edit anywhere compiles afresh instead of reusing stale machine code.
"""

import hashlib
import os
from pathlib import Path

import numba

_HERE = Path(__file__).parent
_SOURCES = [*sorted(_HERE.glob("nb_*.py")), _HERE / "kernels.py"]
_DIGEST = hashlib.sha256(b"".join(p.read_bytes() for p in _SOURCES)).hexdigest()[:12]
if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(Path.home() / ".cache" / "stockml" / "numba" / _DIGEST)
