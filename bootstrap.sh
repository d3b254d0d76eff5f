#!/usr/bin/env bash
# Create .venv and install stockml with its pinned dependencies (requirements.lock).
# Idempotent: a second run only checks what is installed.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"
