"""Two real `bastiond` processes sharing PostgreSQL (a schema of this test's own) and Redis (a key
prefix of its own) behave as one system: events, login limits and logouts cross between them.

Each has a data directory of its own, as two pods do, and there is no Vault: the signing keys they share
live in the database (daemon/stores/secrets/database.py), so a token from one is good on the other."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import jwt
import pytest

from tests.conftest import next_event
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon
from tests.daemon_process import replicas as two_replicas

WAIT_S = 15
SECRET_KEY = "replicas-share-this-at-rest-key-0123456789"


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, redis_url: str, redis_prefix: str) -> Iterator[tuple[Daemon, Daemon]]:
    shared = {"BASTION_DATABASE_URL": pg_url, "BASTION_REDIS_URL": redis_url, "BASTION_REDIS_PREFIX": redis_prefix,
              "BASTION_SECRET_KEY": SECRET_KEY, "BASTION_SIGNING_KEY_RELOAD_S": "1"}
    with two_replicas(tmp_path, shared) as pair:
        yield pair


async def _login(http: aiohttp.ClientSession, daemon: Daemon, email: str = ADMIN_EMAIL,
                 password: str = ADMIN_PASSWORD) -> aiohttp.ClientResponse:
    return await http.post(f"{daemon.url}/api/v1/auth/login", json={"email": email, "password": password})


async def _token(http: aiohttp.ClientSession, daemon: Daemon) -> str:
    response = await _login(http, daemon)
    assert response.status == 200, await response.text()
    return (await response.json())["access_token"]


async def _next_text(ws) -> dict:
    msg = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
    return msg.json()


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def test_a_token_from_either_replica_is_good_on_the_other_over_http_and_websocket(replicas, tmp_path):
    a, b = replicas
    assert not (tmp_path / "a" / "secrets" / "signing_keys.json").exists()  # in the database, not the data dir
    async with aiohttp.ClientSession() as http:
        for issuer, other in ((a, b), (b, a)):
            token = await _token(http, issuer)
            response = await http.get(f"{other.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status == 200, await response.text()
            async with http.ws_connect(f"{other.url}/api/v1/ws") as ws:
                await ws.send_json({"type": "auth", "token": token})
                await ws.send_json({"type": "subscribe", "topics": ["me"]})
                assert (await _next_text(ws))["type"] == "subscribed"  # not closed with 4401


async def test_a_key_rotated_on_one_replica_signs_and_verifies_on_both(replicas):
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        old_token = await _token(http, a)
        done = subprocess.run([sys.executable, "-m", "daemon", "rotate-signing-key"], env=a.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        new_kid = done.stdout.split()[3].rstrip(";")
        assert new_kid != _kid(old_token)
        # Each replica reads the keys again every BASTION_SIGNING_KEY_RELOAD_S (1 s here).
        for daemon in (a, b):
            deadline = time.monotonic() + WAIT_S
            while _kid(token := await _token(http, daemon)) != new_kid:
                assert time.monotonic() < deadline, f"{daemon.url} still signs with the old key"
                await asyncio.sleep(0.5)
            for verifier in (a, b):  # the new key's tokens and the old key's still verify everywhere
                for t in (token, old_token):
                    response = await http.get(f"{verifier.url}/api/v1/users/me", headers={"Authorization": f"Bearer {t}"})
                    assert response.status == 200, await response.text()


async def test_a_user_created_on_a_reaches_a_websocket_on_b(replicas):
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        token = await _token(http, a)  # a token from A is good on B: one key set, one session table
        async with http.ws_connect(f"{b.url}/api/v1/ws") as ws:
            await ws.send_json({"type": "auth", "token": token})
            await ws.send_json({"type": "subscribe", "topics": ["users"]})
            assert (await _next_text(ws))["type"] == "subscribed"
            response = await http.post(f"{a.url}/api/v1/users", headers={"Authorization": f"Bearer {token}"},
                                       json={"email": "carol@example.com", "password": "a long password", "role": "user"})
            assert response.status == 201, await response.text()
            assert (await next_event(ws, "user.created", WAIT_S))["data"]["email"] == "carol@example.com"


async def test_failed_logins_on_a_and_b_count_against_one_limit(replicas):
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        # The per-account limit is 10 failures in 15 minutes, wherever they happen.
        for daemon in (a, b) * 5:
            response = await _login(http, daemon, password="wrong password!")
            assert response.status == 401
        for daemon in (a, b):
            response = await _login(http, daemon, password="wrong password!")
            assert response.status == 429 and int(response.headers["Retry-After"]) > 0
            assert (await response.json())["code"] == "rate_limited"


async def test_a_logout_on_a_ends_the_token_on_b_at_once(replicas):
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        token = await _token(http, a)
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get(f"{b.url}/api/v1/users/me", headers=headers)).status == 200
        async with http.ws_connect(f"{b.url}/api/v1/ws", headers=headers) as ws:
            await ws.send_json({"type": "subscribe", "topics": ["me"]})
            assert (await _next_text(ws))["type"] == "subscribed"
            assert (await http.post(f"{a.url}/api/v1/auth/logout", headers=headers)).status == 204
            response = await http.get(f"{b.url}/api/v1/users/me", headers=headers)
            assert response.status == 401
            msg = await asyncio.wait_for(ws.receive(), WAIT_S)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4401)


HEARD_S = 1.0  # far under the cache's TTL_S (10 s): a B that never drops its copy still fails


async def _read_on(http: aiohttp.ClientSession, url: str, headers: dict, seen) -> tuple[int, dict]:
    """B's answer once `seen(status, body)` holds, read again for up to HEARD_S. When A answers a write, the
    bus has sent its event to B (A read it back), but B may serve the next request before its reader takes
    the event from its socket: a CI run once had B answer 200 for a user A had just deleted. The cache's
    promise is delivery by the time A answers and the drop within milliseconds, not before B's next read."""
    deadline = time.monotonic() + HEARD_S
    while True:
        response = await http.get(url, headers=headers)
        status, body = response.status, await response.json()
        if seen(status, body) or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.01)


async def test_a_change_on_a_is_read_back_on_b_at_once(replicas):
    # Each replica caches the user rows it reads (daemon/services/user_cache.py): B's copy is dropped once A
    # has answered the write (within milliseconds; see _read_on), for a profile change, for an admin's role
    # change, for a login, and for a deletion.
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await _token(http, a)}"}
        me = await (await http.get(f"{b.url}/api/v1/users/me", headers=headers)).json()  # now in B's cache
        for name in ("first", "second", "third"):
            patched = await http.patch(f"{a.url}/api/v1/users/me", headers=headers, json={"display_name": name})
            assert patched.status == 200, await patched.text()
            _, body = await _read_on(http, f"{b.url}/api/v1/users/me", headers,
                                     lambda status, body: body["display_name"] == name)
            assert body["display_name"] == name

        created = await http.post(f"{a.url}/api/v1/users", headers=headers,
                                  json={"email": "dave@example.com", "password": ADMIN_PASSWORD, "role": "user"})
        dave = (await created.json())["id"]
        assert (await (await http.get(f"{b.url}/api/v1/users/{dave}", headers=headers)).json())["role"] == "user"
        assert (await http.patch(f"{a.url}/api/v1/users/{dave}", headers=headers, json={"role": "admin"})).status == 200
        _, body = await _read_on(http, f"{b.url}/api/v1/users/{dave}", headers,
                                 lambda status, body: body["role"] == "admin")
        assert body["role"] == "admin"

        assert (await _login(http, a)).status == 200
        _, after = await _read_on(http, f"{b.url}/api/v1/users/me", headers,
                                  lambda status, body: body["last_login_at"] > me["last_login_at"])
        assert after["last_login_at"] > me["last_login_at"]

        assert (await http.delete(f"{a.url}/api/v1/users/{dave}", headers=headers)).status == 204
        status, _ = await _read_on(http, f"{b.url}/api/v1/users/{dave}", headers, lambda status, body: status == 404)
        assert status == 404
