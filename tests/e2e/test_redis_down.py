"""Redis goes away under a running `bastiond`, and comes back: a redis-server of this test's own on a
spare port, stopped mid-test. Logins fail closed and fast (503 + Retry-After, each in well under the
seconds a retrying client would take), /readyz names Redis, WebSockets close with 1013, nothing answers
500, and everything works again without a restart. A Redis that hangs (its process stopped with SIGSTOP)
holds one request for its socket timeouts, not every one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from daemon.pipeline.rate_limit import LEASE_S
from tests.conftest import free_port, next_event, until
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon, start
from tests.servers import redis_server, spawn, stop_all

WAIT_S = 30
# A generous bound, not a target: with retries spread over seconds each 503 took about 5 s.
FAST_S = 2.0


class RedisServer:
    """A redis-server of this test's own, which the test stops and starts again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = spawn(
            [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            self.directory / "redis.log",
        )
        with redis.Redis(port=self.port, socket_connect_timeout=1) as client:
            for _ in range(100):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_all([self.process])
            self.process = None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Daemon, RedisServer]]:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    daemon = None
    try:
        daemon = start(tmp_path / "data", BASTION_REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0")
        daemon.create_admin()
        yield daemon, redis_server
    finally:
        if daemon is not None:
            daemon.stop()
        redis_server.stop()


async def test_redis_down_fails_closed_and_recovers_without_a_restart(stack):
    daemon, redis_server = stack
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with aiohttp.ClientSession(base_url=daemon.url) as http:
        response = await http.post("/api/v1/auth/login", json=credentials)
        assert response.status == 200
        tokens = await response.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        ws = await http.ws_connect("/api/v1/ws", headers=bearer)
        await ws.send_json({"type": "subscribe", "topics": ["users"]})
        assert (await ws.receive_json(timeout=WAIT_S))["type"] == "subscribed"

        redis_server.stop()

        msg = await ws.receive(timeout=WAIT_S)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data in (1011, 1013)
        loop = asyncio.get_running_loop()
        for path, body, headers in (
            ("/api/v1/auth/login", credentials, {}),
            ("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, {}),
            ("/api/v1/auth/logout", None, bearer),
            *[("/api/v1/auth/login", credentials, {})] * 5,  # and it stays fast while Redis is down
        ):
            started = loop.time()
            response = await http.post(path, json=body, headers=headers)
            took = loop.time() - started
            assert response.status == 503, (path, await response.text())
            assert took < FAST_S, f"{path} took {took:.1f} s to answer 503"
            assert int(response.headers["Retry-After"]) > 0
            assert (await response.json())["code"] == "service_unavailable"
        response = await http.get("/readyz")
        assert response.status == 503 and "redis" in (await response.json())["detail"]
        # A new WebSocket is refused at the handshake (its rate limit lives in Redis): 503 with
        # Retry-After, like any other route. Rate-limit hits are leased from Redis for LEASE_S; once
        # the lease taken by the first handshake is over, the next one needs Redis.
        await asyncio.sleep(LEASE_S + 0.5)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect("/api/v1/ws", headers=bearer)
        assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) > 0
        # /metrics still answers, with Redis down in its gauges: the moment an operator's alerts need it.
        response = await http.get("/metrics")
        assert response.status == 200, await response.text()
        assert 'bastion_backend_up{service="redis"} 0.0' in await response.text()

        redis_server.start()  # the same port, empty: as after a Redis restart without persistence

        async def ready() -> bool:
            return (await http.get("/readyz")).status == 200

        await until(ready, "/readyz to recover", within=WAIT_S, every=0.2)
        response = await http.post("/api/v1/auth/login", json=credentials)
        assert response.status == 200, await response.text()
        bearer = {"Authorization": f"Bearer {(await response.json())['access_token']}"}
        async with http.ws_connect("/api/v1/ws", headers=bearer) as ws:
            await ws.send_json({"type": "subscribe", "topics": ["users"]})
            assert (await ws.receive_json(timeout=WAIT_S))["type"] == "subscribed"
            response = await http.post("/api/v1/users", headers=bearer,
                                       json={"email": "back@example.com", "password": "a long password", "role": "user"})
            assert response.status == 201
            assert (await next_event(ws, "user.created", WAIT_S))["data"]["email"] == "back@example.com"

    assert daemon.process.poll() is None, "bastiond died"
    assert "unhandled error" not in daemon.log.read_text(), "something answered 500"


async def test_a_hung_redis_holds_one_request_for_its_timeouts_and_the_others_fail_at_once(stack):
    daemon, redis_server = stack
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(base_url=daemon.url) as http:
        assert (await http.post("/api/v1/auth/login", json=credentials)).status == 200
        os.kill(redis_server.process.pid, signal.SIGSTOP)  # connections still open: every read just waits
        try:
            took = []
            for _ in range(5):
                started = loop.time()
                response = await http.post("/api/v1/auth/login", json=credentials)
                took.append(loop.time() - started)
                assert response.status == 503, await response.text()
                assert int(response.headers["Retry-After"]) > 0
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        # The first one waits out the socket timeout (2.5 s) and opens the breaker; the others are
        # answered at once, unless one more happens to be the probe that sees whether Redis is back.
        assert sum(t >= FAST_S for t in took) <= 2, [round(t, 1) for t in took]

        async def logged_in() -> bool:
            return (await http.post("/api/v1/auth/login", json=credentials)).status == 200

        await until(logged_in, "logins to work again once Redis runs", within=WAIT_S, every=0.2)
    assert "unhandled error" not in daemon.log.read_text(), "something answered 500"
