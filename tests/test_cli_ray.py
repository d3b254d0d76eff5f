"""A wrong `--ray-address` is one line and exit 2 within seconds, naming the address and
what answered there, whatever listens: nothing, a silent TCP server (it once held
`stockml train` at 0% for over five minutes), a web server, an HTTP/2 server that is not
Ray's GCS. And stockml chooses Ray's token-authentication mode itself, so Ray has no
banner to print about choosing it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stockml.ray_address import auth_mode
from tests.cli_support import assert_one_line_error, run_cli

SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


@contextmanager
def tcp_server(answer: bytes | None) -> Iterator[str]:
    """A server on 127.0.0.1 that accepts every connection, reads what comes, sends
    `answer` (None: nothing) and then keeps the connection open, silent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if answer is not None:
                conn.settimeout(2)
                try:
                    conn.recv(1024)
                    conn.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture(scope="module")
def store_to_train(quick_demo_store) -> Path:
    """A store with enough samples that training would reach Ray (the check must stop it
    before; it writes nothing but log lines)."""
    return quick_demo_store


def train_at(db: Path, address: str):
    started = time.monotonic()
    proc = run_cli("train", "--db", str(db), "--ray-address", address, timeout=120)
    return proc, time.monotonic() - started


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (None, "accepts connections but is not a Ray cluster: nothing answered"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "'HTTP/1.1 400 Bad Request'"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "'SSH-2.0-OpenSSH_9.2'"),
    ],
    ids=["silent", "web-server", "ssh"],
)
def test_an_address_that_is_not_ray_is_one_line_within_seconds(store_to_train, answer, fragment):
    """Something that accepts TCP but is not Ray: exit 2 in well under a minute, one
    line with the address and what it said."""
    with tcp_server(answer) as address:
        proc, seconds = train_at(store_to_train, address)
    assert_one_line_error(proc, 2, address)
    assert fragment in proc.stderr
    assert seconds < 60


def test_nothing_listening_is_one_line(store_to_train):
    """A closed port: 'no Ray cluster answers at ADDRESS: Connection refused'."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    proc, _ = train_at(store_to_train, address)
    assert_one_line_error(proc, 2, f"no Ray cluster answers at {address}")


@pytest.mark.parametrize("address", ["localhost", "host:port", "10.0.0.1:99999"])
def test_a_malformed_address_is_one_line(store_to_train, address):
    proc, _ = train_at(store_to_train, address)
    assert_one_line_error(proc, 2, "is not HOST:PORT")


@pytest.mark.slow
def test_an_http2_server_that_is_not_ray_is_cut_at_the_gcs_deadline(store_to_train):
    """A server that greets like gRPC (an HTTP/2 SETTINGS frame) and then says nothing:
    Ray's own client would wait for minutes; the check gives up at its deadline."""
    with tcp_server(SETTINGS_FRAME) as address:
        proc, seconds = train_at(store_to_train, address)
    assert_one_line_error(proc, 2, address)
    assert "GCS" in proc.stderr
    assert seconds < 60


@pytest.mark.parametrize(
    ("env", "address", "token", "mode"),
    [
        ({}, None, False, "token"),  # a local cluster: Ray's own default, said explicitly
        ({}, "10.0.0.5:6379", False, "disabled"),
        ({}, "10.0.0.5:6379", True, "token"),
        ({"RAY_AUTH_MODE": "disabled"}, None, True, "disabled"),  # the user's choice wins
    ],
)
def test_auth_mode_is_what_ray_would_choose_said_explicitly(
    monkeypatch, tmp_path, env, address, token, mode
):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    path = tmp_path / "auth_token"
    if token:
        path.write_text("x" * 32)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert auth_mode(address) == mode
