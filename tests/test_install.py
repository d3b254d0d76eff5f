"""Installation a reviewer can trust: the locks pin every package with its hashes, hold
exactly what pyproject.toml needs (no package nothing requires), and the venv holds
exactly the lock (bootstrap.sh installs with --require-hashes and --no-deps)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: ; (.+?))?\s*\\?$")


def locked(name: str) -> dict[str, tuple[str, bool]]:
    """{package: (version, applies here)} of a lock, checking each entry has hashes."""
    text = (ROOT / name).read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.splitlines()[0]
        if first.startswith("#"):
            continue
        match = ENTRY.match(first)
        assert match, f"{name}: not pinned with ==: {first}"
        assert "--hash=sha256:" in block, f"{name}: {match[1]} has no hash"
        marker = Requirement(f"x ; {match[3]}").marker if match[3] else None
        out[canonicalize_name(match[1])] = (match[2], marker is None or marker.evaluate())
    return out


def needed(requirements: list[str], extra: str | None = None) -> set[str]:
    """Every package `requirements` pull in here, through installed metadata's
    Requires-Dist (markers evaluated, extras followed)."""
    todo = [(Requirement(r), {extra} if extra else set()) for r in requirements]
    seen: set[str] = set()
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for text in distribution(name).requires or []:
            child = Requirement(text)
            wanted = {""} | set(req.extras)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((child, set()))
    return seen


def build_requirements() -> list[str]:
    lines = (ROOT / "requirements.in").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_every_locked_package_is_pinned_with_hashes():
    """Both locks: `name==version` and at least one SHA-256 per entry (checked in
    `locked`); the runtime lock is the dev lock's subset at the same versions."""
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert runtime and set(runtime) < set(dev)
    assert all(dev[name] == pin for name, pin in runtime.items())


def test_the_locks_hold_exactly_what_pyproject_needs():
    """No package nothing requires (the old lock listed 26 never installed: Ray's
    dashboard extras), none missing."""
    project = PYPROJECT["project"]
    base = project["dependencies"] + build_requirements()
    runtime = {n for n, (_, here) in locked("requirements.lock").items() if here}
    dev = {n for n, (_, here) in locked("requirements-dev.lock").items() if here}
    assert runtime == needed(base)
    assert dev == needed(base + project["optional-dependencies"]["dev"])


def test_the_venv_holds_exactly_the_dev_lock():
    """What is installed is the lock, version for version (rerun `bash bootstrap.sh
    --dev` after the lock changes)."""
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in distributions()
        if canonicalize_name(d.metadata["Name"]) != "stockml"
    }
    lock = {n: v for n, (v, here) in locked("requirements-dev.lock").items() if here}
    assert installed == lock, {
        "not locked": sorted(set(installed) - set(lock)),
        "not installed": sorted(set(lock) - set(installed)),
        "other version": sorted(n for n in lock if n in installed and installed[n] != lock[n]),
    }


def test_bootstrap_and_ci_install_only_hash_checked_files():
    bootstrap = (ROOT / "bootstrap.sh").read_text()
    assert "--require-hashes --no-deps -r" in bootstrap
    assert "--no-deps --no-build-isolation" in bootstrap
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash bootstrap.sh --dev" in ci and "pip check" in ci


def test_the_editable_build_prints_no_notice(tmp_path):
    """pyproject's own build backend builds the editable wheel bootstrap.sh installs
    without a word on stderr and without a warning (setuptools printed a box of asterisks
    on every bootstrap, in each of its editable modes, for this five-package layout)."""
    import importlib
    import subprocess
    import sys

    backend = PYPROJECT["build-system"]["build-backend"]
    importlib.import_module(backend)  # installed: bootstrap builds with --no-build-isolation
    code = (
        "import importlib, sys, warnings; warnings.simplefilter('always'); "
        f"b = importlib.import_module({backend!r}); print(b.build_editable(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    wheel = done.stdout.strip().splitlines()[-1]
    assert wheel.endswith(".whl") and (tmp_path / wheel).exists()
    assert done.stderr == "", done.stderr
