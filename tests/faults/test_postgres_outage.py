"""PostgreSQL stops under load and comes back: the daemon answers 503 with Retry-After meanwhile (never
500), reports itself not ready but alive, and serves again once the database returns, without a restart."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE
from tests.daemon_process import start
from tests.faults.client import Reply, fetch
from tests.faults.pg_server import PgServer, available

WAIT_S = 60.0  # bounds on waiting for a condition, never a performance target


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    if not available():
        (pytest.fail if REQUIRE else pytest.skip)("PostgreSQL binaries are not installed")
    server = PgServer().init()
    server.start()
    yield server
    server.destroy()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


class Load:
    """Threads reading and writing through the API until stopped, keeping every answer."""

    def __init__(self, url: str, token: str, threads: int = 4) -> None:
        self.url, self.token = url, token
        self.replies: list[Reply] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        calls = [("GET", "/api/v1/users/me", None), ("PATCH", "/api/v1/users/me", {"display_name": f"t{n}"}),
                 ("GET", "/api/v1/users?limit=5", None)]
        i = 0
        while not self._stop.is_set():
            method, path, body = calls[i % len(calls)]
            reply = fetch(self.url + path, method, body, self.token)
            with self._lock:
                self.replies.append(reply)
            i += 1

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for r in self.replies if r.status == status)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(WAIT_S)


def test_postgresql_down_under_load_gives_503_with_retry_after_and_recovers_without_restart(
    tmp_path: Path, pg_server: PgServer
) -> None:
    daemon = start(tmp_path / "data", BASTION_DATABASE_URL=pg_server.url, BASTION_RATE_LIMIT_PER_MINUTE="0")
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        with Load(daemon.url, token) as load:
            wait_until(lambda: load.count(200) >= 30, "answers while PostgreSQL is up")
            pg_server.stop()
            wait_until(lambda: load.count(503) >= 30, "503 answers while PostgreSQL is down")

            ready, alive = fetch(daemon.url + "/readyz"), fetch(daemon.url + "/healthz")
            assert ready.status == 503 and "database" in ready.json()["detail"], ready
            assert "Retry-After" in ready.headers
            assert alive.status == 200

            pg_server.start()
            served_before = load.count(200)
            wait_until(lambda: load.count(200) >= served_before + 30, "answers after PostgreSQL returned")
            wait_until(lambda: fetch(daemon.url + "/readyz").status == 200, "/readyz to pass again")

        assert daemon.process.poll() is None, "the daemon exited"
        statuses = Counter(r.status for r in load.replies)
        assert set(statuses) <= {200, 503}, statuses
        unavailable = [r for r in load.replies if r.status == 503]
        assert all("Retry-After" in r.headers and r.json()["code"] == "service_unavailable" for r in unavailable)
        # Logging in, which writes a session, works again too.
        assert fetch(daemon.url + "/api/v1/users/me", token=daemon.admin_token()).status == 200
    finally:
        daemon.stop()
