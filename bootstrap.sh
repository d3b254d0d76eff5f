#!/usr/bin/env bash
# Create .venv and install stockml with its pinned dependencies (requirements.lock).
# Idempotent: a second run only checks what is installed and loads the compiled kernels.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"
# The feature kernels into Numba's cache (~/.cache/stockml/numba/<digest of their source>):
# compiled here once per checkout, in two processes (50 s of CPU), so the first stockml
# command loads them in about a second; a second bootstrap only loads them.
echo "bootstrap: feature kernels into Numba's cache (compiled the first time only)"
.venv/bin/python -c "import features.cache as cache; cache.precompile()"
