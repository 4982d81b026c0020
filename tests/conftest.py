"""Fixtures shared by every kind of test: settings, the real PostgreSQL and Redis, a running app.

PostgreSQL runs get a schema of their own per test session (dropped at the end) and Redis runs a key
prefix of their own, so concurrent runs on one machine never see each other's data. When a server is
not reachable the tests that need it skip, unless BASTION_TEST_REQUIRE_SERVICES=1 (set by .ci/run),
under which they fail.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon.settings import Settings

PG_URL = os.environ.get("BASTION_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("BASTION_TEST_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if REQUIRE:
        pytest.fail(f"{service} at {host}:{port} is required (BASTION_TEST_REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{service} at {host}:{port} is not running")


def installed(program: str, label: str | None = None) -> str:
    """The path of a program a test runs, on PATH or beside this Python (tools installed into the venv).
    Without it the test skips, or fails under BASTION_TEST_REQUIRE_SERVICES=1. `label` names it for a
    person who has to install it (e.g. its Debian package)."""
    path = shutil.which(program) or str(Path(sys.executable).parent / program)
    if os.access(path, os.X_OK):
        return path
    label = label or program
    if REQUIRE:
        pytest.fail(f"{label} is required (BASTION_TEST_REQUIRE_SERVICES=1) but not installed")
    pytest.skip(f"{label} is not installed")


@contextmanager
def _fresh_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards."""
    import psycopg2

    schema = f"{prefix}_{secrets.token_hex(5)}"
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A schema for the whole session."""
    need("PostgreSQL", "127.0.0.1", 5432)
    with _fresh_schema("bastion_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_schema_url: str) -> Iterator[str]:
    """A schema per test: each test starts from an empty database."""
    with _fresh_schema("bastion_t") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    need("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"bastion-test-{secrets.token_hex(4)}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings.from_env({}, data_dir=data_dir)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_backend(request: pytest.FixtureRequest, data_dir: Path) -> str:
    """Parametrises a test over both SQL backends; returns the database URL ('' for SQLite)."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("pg_url")


@pytest.fixture
def backend_settings(sql_backend: str, data_dir: Path) -> Settings:
    return Settings.from_env({}, data_dir=data_dir, database_url=sql_backend or None)


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    from daemon.app import create_app

    return await aiohttp_client(create_app(settings))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def next_event(ws, name: str, within: float = 15.0) -> dict:
    """The next WebSocket event called `name`, passing over others: with Redis an event is delivered
    asynchronously, so one raised just before a subscription (a login's `user.updated`) may still come."""
    while True:
        message = await ws.receive_json(timeout=within)
        if message.get("event") == name:
            return message


async def until(check, what: str, within: float = 15.0, every: float = 0.05, ignoring: tuple = ()) -> None:
    """Poll `check` (returning a bool, or an awaitable of one) until it holds; fail naming `what` after
    `within` seconds, a bound on waiting and not a performance target. Errors in `ignoring` count as no."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            held = check()
            if inspect.isawaitable(held):
                held = await held
            if held:
                return
        except ignoring:
            pass
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(every)


@pytest.fixture
def inbox() -> Iterator[object]:
    """A real SMTP server on this machine for the mail tests (tests.smtp_server.Inbox), and what it received."""
    from tests.smtp_server import smtp_server  # here: that module imports this one

    with smtp_server() as running:
        yield running
