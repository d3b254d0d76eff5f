#!/usr/bin/env bash
# Create .venv and install exactly the hash-pinned dependencies, then stockml itself:
#   bash bootstrap.sh          what stockml needs to run      (requirements.lock)
#   bash bootstrap.sh --dev    and what the tests need too     (requirements-dev.lock)
# pip refuses (--require-hashes) any file whose SHA-256 is not the locked one, and installs
# nothing the lock does not list (--no-deps): pip and the build backend included, so stockml
# is built with the locked hatchling (--no-build-isolation). Idempotent: a second run only
# checks what is installed and loads the compiled kernels. The locks: lock.sh.
# Byte-code: pip's own compiling runs on one core (--no-compile), so compileall does it on
# every core afterwards (skipping what is up to date). It is not left to Python's first
# imports: with PYTHONDONTWRITEBYTECODE set (this project's machines and many container
# images set it) nothing would ever be cached, and every stockml process, Ray worker and
# test would compile its imports again (`stockml --help` 1.46 s instead of 0.66 s).
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
    "") LOCK=requirements.lock ;;
    --dev) LOCK=requirements-dev.lock ;;
    *) echo "usage: bash bootstrap.sh [--dev]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --no-compile --require-hashes --no-deps -r "$LOCK"
# Editable: a .pth puts the checkout on sys.path, so edits need no reinstall.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "bootstrap: byte-compiling the venv and stockml's packages"
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))")
.venv/bin/python -m compileall -q -j 0 "$SITE" stockml ingest features backtest training >/dev/null
# The feature kernels into Numba's cache (~/.cache/stockml/numba/<digest of their source>):
# compiled here once per checkout, in two processes (50 s of CPU), so the first stockml
# command loads them in about a second; a second bootstrap only loads them.
echo "bootstrap: feature kernels into Numba's cache (compiled the first time only)"
.venv/bin/python -c "import features.cache as cache; cache.precompile()"
