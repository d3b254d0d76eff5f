"""Disks that misbehave, for the tests of what a command does when its files cannot be
written: a small tmpfs (a full disk), a read-only bind mount, a file-size limit.

Mounting needs root (CI runs as root, and so do the sessions here); elsewhere the tests
that need a mount skip, and the file-size limit (RLIMIT_FSIZE, any user) stands in for a
full disk where it can.
"""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def tmpfs(folder: Path, size: str = "8m") -> Iterator[Path]:
    """`folder` as a fresh tmpfs of `size` (skips where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of `folder`, leaving about `leave` bytes free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with (folder / "filler").open("wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))


@contextmanager
def read_only(source: Path, folder: Path) -> Iterator[Path]:
    """`source` seen read-only at `folder` (a read-only bind mount; skips where mounting
    is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = _mount("--bind", str(source), str(folder))
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {done.stderr.strip()}")
    try:
        remount = _mount("-o", "remount,ro,bind", str(folder))
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def file_size_limit(limit: int) -> Callable[[], None]:
    """A `preexec_fn` capping every file the child writes at `limit` bytes (`ulimit -f`):
    a write beyond it fails with EFBIG, as on a full disk (Python ignores SIGXFSZ)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply
