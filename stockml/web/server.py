"""`stockml serve`'s process: the listening socket, the host names it answers, its log, uvicorn.

Binding to 127.0.0.1 keeps other machines out, not other web pages: a page the user opens
elsewhere can point a name of its own at 127.0.0.1 (DNS rebinding) and read what the
server answers. So the app answers only requests whose Host header names it as it is
served (`served_hosts`): the loopback names for a loopback address, the address itself
(and, on a wildcard address, this machine's names and addresses) otherwise, plus the names
given with `--allow-host`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from stockml.errors import InputError
from stockml.web.app import LOOPBACK_HOSTS, create_app

WILDCARDS = ("0.0.0.0", "::", "")


def _header_form(host: str) -> str:
    """A host as it appears in a Host header: IPv6 literals in brackets, lower case."""
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{host.strip('[]')}]".lower()
    except ValueError:
        pass
    return host.lower()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def served_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names the page answers when listening on `host`, plus `extra` (names or
    Starlette patterns such as `*.example.com`), without duplicates, in order."""
    names = [_header_form(host)] if host not in WILDCARDS else []
    if is_loopback(host) or host in WILDCARDS:
        names += LOOPBACK_HOSTS
    if host in WILDCARDS:
        names += [socket.gethostname(), socket.getfqdn()]
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None)
        except OSError:
            infos = []
        names += [str(info[4][0]) for info in infos]
    names += list(extra)
    return list(dict.fromkeys(_header_form(n) for n in names if n))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. InputError when the
    port is out of range or the address cannot be taken."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: a port is 0 to 65535 (0 picks a free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def server_log(db: Path) -> Path | None:
    """Where the server logs: beside the store (`data/stockml.log`) when that can be
    written, else (a store on a read-only mount) ~/.cache/stockml/logs/, else a folder of
    this user's in TMPDIR (stockml/places.py); None when none can be written."""
    from stockml.logs import log_path_for
    from stockml.places import log_folder_candidates

    beside = log_path_for(db)
    name = f"{db.stem}.serve.log"
    folders = log_folder_candidates(beside.parent)
    for candidate in [beside, *(folder / name for folder in folders[1:])]:
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with candidate.open("a"):
                return candidate
        except OSError:
            continue
    return None


def serve_forever(
    db: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    runs: Path | None = None,
    allow_hosts: Sequence[str] = (),
    log: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the app for the store at `db` until Ctrl-C, printing the page's address (and
    where the log went when it is not beside the store, `log`)."""
    import uvicorn

    db = Path(db)
    hosts = served_hosts(host, allow_hosts)
    app = create_app(db, runs=runs, hosts=hosts)  # refuses a missing store before listening
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    say(f"ML Signals page: http://{shown}:{bound_port}/ml-signals (store {db}; Ctrl-C stops)")
    if log is None:
        say("warning: no folder for the server's log can be written; it logs nothing")
    elif log.parent.resolve() != db.parent.resolve():
        say(f"log: {log} (the store's folder cannot be written)")
    if not is_loopback(host):
        say(
            f"warning: listening on {host}: anyone who can reach this machine can read the "
            f"page; it answers the host names {', '.join(hosts)} (add others with --allow-host)"
        )
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    uvicorn.Server(config).run(sockets=[sock])
