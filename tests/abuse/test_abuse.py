"""Hostile requests against a real bastiond: each is answered (400/413/422/431) or closed, quickly and
in bounded memory, while an ordinary client on another connection keeps getting its answers.

Requests go over raw sockets, so the test controls every byte (a client library would refuse to send
most of these).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon_process import Daemon, with_admin

ANSWER_WAIT_S = 30.0  # a bound on waiting, not a performance target
KEEPALIVE_S = 3


@dataclass
class Answer:
    status: int
    body: bytes
    closed: bool  # the server closed the connection after answering


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with with_admin(tmp_path_factory.mktemp("abuse") / "data", BASTION_KEEPALIVE_TIMEOUT_S=str(KEEPALIVE_S),
                    BASTION_RATE_LIMIT_PER_MINUTE="0", BASTION_AUTH_RATE_LIMIT_PER_MINUTE="0") as running:
        yield running


@pytest.fixture(scope="module")
def token(daemon: Daemon) -> str:
    return daemon.admin_token()


def _address(daemon: Daemon) -> tuple[str, int]:
    host, port = daemon.url.removeprefix("http://").split(":")
    return host, int(port)


def send(daemon: Daemon, head: bytes, body: bytes = b"") -> Answer:
    """Send raw bytes, read one answer, and see whether the server then closes the connection."""
    with socket.create_connection(_address(daemon), timeout=ANSWER_WAIT_S) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading a body it refused
        response = http.client.HTTPResponse(sock)
        response.begin()
        payload = response.read()
        sock.settimeout(KEEPALIVE_S * 3)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
        return Answer(response.status, payload, closed)


def post(daemon: Daemon, path: str, body: bytes, token: str | None = None, chunked: bool = False,
         method: str = "POST") -> Answer:
    head = f"{method} {path} HTTP/1.1\r\nHost: bastion\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        step = 64 * 1024
        body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                        for i in range(0, len(body), step)) + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n"
    return send(daemon, head.encode(), body)


def code(answer: Answer) -> str:
    return json.loads(answer.body)["code"]


def healthy(daemon: Daemon) -> bool:
    with urllib.request.urlopen(daemon.url + "/healthz", timeout=ANSWER_WAIT_S) as response:
        return response.status == 200


def rss_mb(daemon: Daemon) -> float:
    for line in Path(f"/proc/{daemon.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


TWO_MIB_LOGIN = json.dumps({"email": "a@example.com", "password": "x" * (2 << 20)}).encode()


def test_a_2_mib_body_is_refused_with_413_before_it_is_read(daemon: Daemon) -> None:
    answer = post(daemon, "/api/v1/auth/login", TWO_MIB_LOGIN)
    assert (answer.status, code(answer)) == (413, "payload_too_large")


def test_a_2_mib_chunked_body_is_refused_with_413(daemon: Daemon) -> None:
    answer = post(daemon, "/api/v1/auth/login", TWO_MIB_LOGIN, chunked=True)
    assert (answer.status, code(answer)) == (413, "payload_too_large")


def test_json_nested_10000_deep_is_refused_as_invalid_json(daemon: Daemon, token: str) -> None:
    body = b'{"display_name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    answer = post(daemon, "/api/v1/users/me", body, token, method="PATCH")
    assert (answer.status, code(answer)) == (400, "invalid_json")


@pytest.mark.parametrize("field", ["scopes", "name"])
def test_an_array_of_100000_elements_gets_one_short_422(daemon: Daemon, token: str, field: str) -> None:
    body = {"name": "k", "scopes": ["read"], field: list(range(100_000))}
    answer = post(daemon, "/api/v1/auth/api-keys", json.dumps(body).encode(), token)
    assert (answer.status, code(answer)) == (422, "validation_failed")
    # One complaint per bad element would make the answer far bigger than the question.
    assert len(answer.body) < 16 * 1024, len(answer.body)


def test_invalid_utf8_is_refused_as_invalid_json(daemon: Daemon) -> None:
    answer = post(daemon, "/api/v1/auth/login", b'{"email": "a@example.com", "password": "\xff\xfe\xc3("}')
    assert (answer.status, code(answer)) == (400, "invalid_json")


def test_a_64_kib_header_is_refused_and_the_connection_closed(daemon: Daemon) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: bastion\r\nX-Padding: " + b"a" * (64 * 1024) + b"\r\n\r\n"
    answer = send(daemon, head)
    assert answer.status in (400, 431)
    assert answer.closed


def test_64_kib_of_small_headers_is_refused_and_the_connection_closed(daemon: Daemon) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: bastion\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"a" * 60) for i in range(1024)) + b"\r\n"
    answer = send(daemon, head)
    assert answer.status in (400, 431)
    assert answer.closed


def test_slow_loris_connections_are_closed_and_other_clients_still_answered(daemon: Daemon) -> None:
    stop = threading.Event()
    conns = [socket.create_connection(_address(daemon), timeout=ANSWER_WAIT_S) for _ in range(200)]

    def trickle() -> None:
        for sock in conns:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bastion\r\n")
        while not stop.wait(0.5):
            for sock in conns:
                try:
                    sock.sendall(b"X")  # a header that never ends
                except OSError:
                    pass

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        for _ in range(20):
            assert healthy(daemon)
        deadline = time.monotonic() + KEEPALIVE_S + ANSWER_WAIT_S
        open_ones = list(conns)
        while open_ones and time.monotonic() < deadline:
            still = []
            for sock in open_ones:
                sock.settimeout(0.01)
                try:
                    if sock.recv(4096) == b"":
                        continue  # closed by the server
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    continue
                still.append(sock)
            open_ones = still
            time.sleep(0.2)
        assert not open_ones, f"{len(open_ones)} of {len(conns)} slow connections still open"
    finally:
        stop.set()
        sender.join()
        for sock in conns:
            sock.close()


def test_a_barrage_of_every_abuse_leaves_memory_bounded_and_others_answered(daemon: Daemon, token: str) -> None:
    before = rss_mb(daemon)
    attacks = [
        lambda: post(daemon, "/api/v1/auth/login", TWO_MIB_LOGIN, chunked=True),
        lambda: post(daemon, "/api/v1/users/me", b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", token,
                     method="PATCH"),
        lambda: post(daemon, "/api/v1/auth/api-keys",
                     json.dumps({"name": "k", "scopes": list(range(100_000))}).encode(), token),
    ]
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(attacks[i % len(attacks)]) for i in range(48)]
        for _ in range(10):
            assert healthy(daemon)
        statuses = {f.result().status for f in futures}
    assert statuses <= {400, 413, 422}, statuses
    assert healthy(daemon)
    # Each refused body may be held while it is read, but the barrage must not pile up in memory.
    grown = rss_mb(daemon) - before
    assert grown < 200, f"RSS grew by {grown:.0f} MB"
