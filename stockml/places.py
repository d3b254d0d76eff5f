"""Where stockml keeps files outside the store, and what it does when a place cannot take them.

    Numba's kernel cache   ~/.cache/stockml/numba/<digest>, else <TMPDIR>/stockml-<uid>/...
                           (features/cache.py); NUMBA_CACHE_DIR, when set, is used as it is
    Ray's temp dir         RAY_TMPDIR or TMPDIR (Ray's own rule), /tmp/ray by default: a
                           local cluster's sockets and logs; one line when it cannot be
                           written (training/ray_runner.init_ray)
    Ray's token            ~/.ray/auth_token, which Ray writes for a local cluster; when
                           ~/.ray cannot be written, the local cluster gets a token through
                           RAY_AUTH_TOKEN in its environment instead
    the server's log       beside the store, else ~/.cache/stockml/logs, else TMPDIR
                           (stockml/web/server.py)

A place "can take" files when its folder can be created and a block written in it, with
room to spare: a full disk (HOME on a full partition) and a path that is not a folder
(HOME pointing at a file) both fail that probe, before a library meets them mid-run with a
200-line traceback.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stockml.errors import InputError


def cannot_take(folder: Path, need: int = 0) -> str | None:
    """None when `folder` can be created and written with at least `need` bytes free;
    else why not, in a few words."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".stockml-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"\0" * 4096)  # a whole block: a full disk refuses it
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if free < need:
        return f"{free / 2**20:.0f} MiB free, {need / 2**20:.0f} MiB needed"
    return None


def home() -> Path | None:
    """The user's home folder, or None when there is none."""
    try:
        return Path.home()
    except (RuntimeError, KeyError):
        return None


def user_temp(*parts: str) -> Path:
    """A folder of this user's in TMPDIR: the fallback for what would go under HOME."""
    import tempfile

    return Path(tempfile.gettempdir(), f"stockml-{os.getuid()}", *parts)


RAY_TEMP_NEED = 64 * 2**20  # a local cluster's logs and session files, with room to spare


def local_ray_environment() -> None:
    """Prepare what a local Ray cluster writes outside the store: its temp dir must take
    files (InputError naming it otherwise), and when Ray would write its token to a
    ~/.ray that cannot take it, hand the cluster one through RAY_AUTH_TOKEN instead."""
    import secrets
    import tempfile

    temp = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"
    why = cannot_take(temp, RAY_TEMP_NEED)
    if why is not None:
        raise InputError(
            f"Ray's temp dir {temp} cannot be written ({why}): free space there or point "
            "RAY_TMPDIR at a folder with room"
        )
    if any(os.environ.get(k) for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        return
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return
    folder = home()
    token = folder / ".ray" / "auth_token" if folder is not None else None
    if token is not None and token.is_file():
        return
    if token is None or cannot_take(token.parent) is not None:
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # this cluster's, never saved


def log_folder_candidates(beside: Path) -> list[Path]:
    """Where a log may go, in order: `beside`, ~/.cache/stockml/logs, TMPDIR."""
    folder = home()
    return [
        beside,
        *([folder / ".cache" / "stockml" / "logs"] if folder is not None else []),
        user_temp("logs"),
    ]
