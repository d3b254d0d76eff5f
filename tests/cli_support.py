"""Helpers for the command-line tests: the real `stockml` in a subprocess, with its
stdout and stderr as a pipe (as under cron) or as a terminal (a pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", **extra}


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`stockml ARGS` with stdout and stderr each a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
    )


def run_in_terminal(
    *args: str, timeout: float = 120, columns: int = 100, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """`stockml ARGS` with stdout and stderr on one pseudo-terminal `columns` wide, as a
    person at a terminal runs it; returns (exit status, everything it drew)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockml.cli", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**(env or cli_env()), "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm"},
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    """Exit `code`, no traceback, and stderr ending in exactly one `stockml: error:` line
    that contains `fragment`."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines and lines[-1].startswith("stockml: error:"), proc.stderr
    assert fragment in lines[-1], proc.stderr
    assert len([line for line in lines if line.startswith("stockml: error:")]) == 1
