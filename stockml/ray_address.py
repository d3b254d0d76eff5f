"""Is a `--ray-address` a Ray cluster? Asked within a bounded time, answered in one line.

`ray.init(address=...)` against something that is not a Ray cluster's GCS retries for
minutes (an address that accepts TCP and says nothing: over five), or ends in a long
traceback. `probe(address)` asks in three steps, each bounded by `Deadlines`:

    1. TCP      does anything listen there?               refused, unreachable, no such host
    2. HTTP/2   does it greet like a gRPC server?         silence, or what it said instead
                (Ray's GCS is one: it answers the HTTP/2 client preface with a SETTINGS frame)
    3. GCS      does Ray's own GCS client get the cluster's session from it, within the
                deadline? (in a child process, killed at the deadline: a hung C++ client
                cannot be interrupted in this one)

Each failure is a `RayAddressError` (exit 2) naming the address and what answered.
`auth_mode()` is the token-authentication mode stockml sets for Ray (see its doc).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stockml.errors import InputError


class RayAddressError(InputError):
    """The address given is not a reachable Ray cluster."""


@dataclass(frozen=True)
class Deadlines:
    """Seconds each step of `probe` may take."""

    connect: float = 5.0
    greeting: float = 5.0
    gcs: float = 10.0


# The HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4
# Run by a child Python: Ray's GCS client, bounded by RAY_py_gcs_connect_timeout_s.
_GCS_PROBE = """
import sys
from ray._raylet import GcsClient
client = GcsClient(address=sys.argv[1])
print(client.internal_kv_get(b"session_name", b"session", timeout=float(sys.argv[2])).decode())
"""


def split_address(address: str) -> tuple[str, int] | None:
    """'10.0.0.5:6379' -> ('10.0.0.5', 6379); None for forms Ray resolves itself (`auto`,
    `local`, `ray://...`). Raises RayAddressError for anything else."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayAddressError(
            f"--ray-address {address!r} is not HOST:PORT (nor auto, nor ray://HOST:PORT)"
        )
    return host, int(port)


def _said(data: bytes) -> str:
    """The first line of what a server sent, printable and short."""
    line = data.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    text = "".join(c if c.isprintable() else "." for c in line).strip()
    return text[:60] + ("…" if len(text) > 60 else "")


def probe(address: str, deadlines: Deadlines = Deadlines()) -> str | None:
    """Check that a Ray cluster's GCS answers at `address` (see the module doc); returns
    its session name, or None for an address Ray resolves itself. Raises RayAddressError."""
    where = split_address(address)
    if where is None:
        return None
    try:
        sock = socket.create_connection(where, timeout=deadlines.connect)
    except socket.gaierror as exc:
        raise RayAddressError(f"--ray-address {address}: unknown host ({exc.strerror})") from None
    except TimeoutError:
        raise RayAddressError(
            f"no Ray cluster answers at {address}: no TCP connection within "
            f"{deadlines.connect:g} s (a firewall, or a wrong host)"
        ) from None
    except OSError as exc:
        raise RayAddressError(
            f"no Ray cluster answers at {address}: {exc.strerror or exc}; "
            "check --ray-address or RAY_ADDRESS"
        ) from None
    with sock:
        sock.settimeout(deadlines.greeting)
        try:
            sock.sendall(_PREFACE)
            data = sock.recv(64)
        except TimeoutError:
            raise RayAddressError(
                f"{address} accepts connections but is not a Ray cluster: nothing answered "
                f"Ray's greeting within {deadlines.greeting:g} s; check the port (the GCS "
                "port of the head node, 6379 unless `ray start --port` said otherwise)"
            ) from None
        except OSError as exc:
            raise RayAddressError(
                f"{address} is not a Ray cluster: it dropped the connection ({exc.strerror})"
            ) from None
    if len(data) < 9 or data[3] != _SETTINGS:
        what = f"it answered {_said(data)!r}" if data else "it closed the connection"
        raise RayAddressError(
            f"{address} is not a Ray cluster: {what}; check the port (the GCS port of "
            "the head node, 6379 unless `ray start --port` said otherwise)"
        )
    return _ask_gcs(address, deadlines.gcs)


def _ask_gcs(address: str, seconds: float) -> str:
    env = {
        **os.environ,
        "RAY_py_gcs_connect_timeout_s": str(max(1, round(seconds / 2))),
        "RAY_AUTH_MODE": auth_mode(address),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _GCS_PROBE, address, str(seconds / 2)],
            capture_output=True,
            text=True,
            timeout=seconds + 10,  # + the child's own start (Python and Ray's import)
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise RayAddressError(
            f"{address} speaks gRPC but Ray's GCS client got no answer from it within "
            f"{seconds:g} s: not a Ray head node's GCS port?"
        ) from None
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    if "auth" in done.stderr.lower() or "token" in done.stderr.lower():
        reason += " (a cluster with token authentication needs its token: RAY_AUTH_TOKEN)"
    raise RayAddressError(f"Ray's GCS client could not use the cluster at {address}: {reason}")


def has_token() -> bool:
    """Whether Ray would find an authentication token here (its own three places)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).is_file() if path else (Path.home() / ".ray" / "auth_token").is_file()


def auth_mode(address: str | None) -> str:
    """The RAY_AUTH_MODE stockml gives Ray when the user set none: Ray warns on every run
    when it has to choose itself ("Token authentication is enabled for this Ray
    cluster..."), so choose what it would. A local cluster (no address) uses token
    authentication (Ray generates the token, ~/.ray/auth_token); a remote one uses it
    when a token is present, as Ray does. The user's own RAY_AUTH_MODE always wins."""
    chosen = os.environ.get("RAY_AUTH_MODE")
    if chosen:
        return chosen
    return "token" if address is None or has_token() else "disabled"
