"""A real `bastiond` process on a free port with a data dir of its own, for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
START_WAIT_S = 30.0
ROOT = Path(__file__).resolve().parents[1]


class Refused(Exception):
    """The daemon answered an error status (`status`); the body is in the message."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


@dataclass
class Daemon:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log: Path
    # The settings it was started with, so create-admin writes to the same database (PostgreSQL too).
    settings: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, "BASTION_DATA_DIR": str(self.data_dir), "BASTION_LOG_LEVEL": "warning",
                **self.settings}

    def create_admin(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "create-admin", "--email", email],
            env={**self.env(), "BASTION_ADMIN_PASSWORD": password}, cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        """A plain HTTP call that does not go through shared.client (so tests do not grade it by itself)."""
        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds its socket open until closed: a ResourceWarning under -W error
                raise Refused(exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else {}

    def admin_token(self) -> str:
        return self.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})[
            "access_token"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(data_dir: Path, port: int | None = None, *, command_prefix: Sequence[str] = (), **settings: str) -> Daemon:
    """`port`: the same port again, to restart a daemon where its clients expect it. `command_prefix`: a
    program to run the daemon under (bench/instructions.py counts its instructions with valgrind)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / "bastiond.log"
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir), "BASTION_PORT": str(port),
           "BASTION_LOG_LEVEL": "warning", "BASTION_SHUTDOWN_DRAIN_S": "0", **settings}  # no LB to drain
    with log.open("wb") as out:
        process = subprocess.Popen([*command_prefix, sys.executable, "-m", "daemon", "serve"], env=env, cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    daemon = Daemon(f"http://127.0.0.1:{port}", data_dir, process, log, settings)
    deadline = time.monotonic() + START_WAIT_S * (4 if command_prefix else 1)
    while True:
        if process.poll() is not None:
            raise AssertionError(f"bastiond exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(daemon.url + "/healthz", timeout=2):
                return daemon
        except OSError:
            if time.monotonic() > deadline:
                daemon.stop()
                raise AssertionError(f"bastiond did not answer within {START_WAIT_S}s: {log.read_text()[-2000:]}")
            time.sleep(0.1)


@contextmanager
def replicas(data_dir: Path, shared: dict[str, str], only_b: dict[str, str] | None = None) -> Iterator[tuple[Daemon, Daemon]]:
    """Two started daemons with data dirs of their own (`data_dir`/a and /b) and the `shared` settings (B
    with `only_b` over them), the first admin created through A; both stopped on the way out."""
    a = start(data_dir / "a", **shared)
    try:
        a.create_admin()
        b = start(data_dir / "b", **{**shared, **(only_b or {})})
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@contextmanager
def with_admin(data_dir: Path, *, command_prefix: Sequence[str] = (), **settings: str) -> Iterator[Daemon]:
    """A started daemon whose first admin exists (ADMIN_EMAIL), stopped on the way out."""
    running = start(data_dir, command_prefix=command_prefix, **settings)
    try:
        running.create_admin()
        yield running
    finally:
        running.stop()
