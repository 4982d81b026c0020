"""Two real `bastiond` processes sharing PostgreSQL (a schema of this test's own) and Redis (a key
prefix of its own) behave as one system: events, login limits and logouts cross between them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import next_event
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon, start

WAIT_S = 15


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, redis_url: str, redis_prefix: str) -> Iterator[tuple[Daemon, Daemon]]:
    # One data dir: it holds the signing keys, which replicas share (Vault does this in production).
    shared = {"BASTION_DATABASE_URL": pg_url, "BASTION_REDIS_URL": redis_url, "BASTION_REDIS_PREFIX": redis_prefix}
    a = start(tmp_path / "data", **shared)
    try:
        a.create_admin()
        b = start(tmp_path / "data", **shared)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


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


async def test_a_change_on_a_is_read_back_on_b_at_once(replicas):
    # Each replica caches the user rows it reads (daemon/services/user_cache.py): B's copy must be gone by
    # the time A answers the write, for a profile change, for an admin's role change, and for a login.
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await _token(http, a)}"}
        me = await (await http.get(f"{b.url}/api/v1/users/me", headers=headers)).json()  # now in B's cache
        for name in ("first", "second", "third"):
            patched = await http.patch(f"{a.url}/api/v1/users/me", headers=headers, json={"display_name": name})
            assert patched.status == 200, await patched.text()
            assert (await (await http.get(f"{b.url}/api/v1/users/me", headers=headers)).json())["display_name"] == name

        created = await http.post(f"{a.url}/api/v1/users", headers=headers,
                                  json={"email": "dave@example.com", "password": ADMIN_PASSWORD, "role": "user"})
        dave = (await created.json())["id"]
        assert (await (await http.get(f"{b.url}/api/v1/users/{dave}", headers=headers)).json())["role"] == "user"
        assert (await http.patch(f"{a.url}/api/v1/users/{dave}", headers=headers, json={"role": "admin"})).status == 200
        assert (await (await http.get(f"{b.url}/api/v1/users/{dave}", headers=headers)).json())["role"] == "admin"

        assert (await _login(http, a)).status == 200
        after = await (await http.get(f"{b.url}/api/v1/users/me", headers=headers)).json()
        assert after["last_login_at"] > me["last_login_at"]

        assert (await http.delete(f"{a.url}/api/v1/users/{dave}", headers=headers)).status == 204
        assert (await http.get(f"{b.url}/api/v1/users/{dave}", headers=headers)).status == 404
