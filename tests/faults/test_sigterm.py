"""SIGTERM with 500 open WebSockets and logins in flight: readiness fails first while new requests are
still served (the drain), then the logins finish, every socket is closed with 1001 (going away), and the
daemon exits 0 within its grace period. A second signal cuts the drain short."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp

from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, start

SOCKETS = 500
LOGINS = 20
ACCOUNTS = 4  # one account may have 10 logins in flight from one address (the guess limit)
GRACE_S = 20
# Long enough that the checks made during the drain finish inside it even on a busy machine.
DRAIN_S = 6
WAIT_S = 60.0  # bounds on waiting, not performance targets


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int:
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT_S)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            return ws.close_code


async def test_sigterm_drains_then_finishes_requests_closes_every_socket_with_1001_and_exits_0(
    tmp_path: Path,
) -> None:
    daemon = start(tmp_path / "data", BASTION_SHUTDOWN_TIMEOUT_S=str(GRACE_S), BASTION_SHUTDOWN_DRAIN_S=str(DRAIN_S),
                   BASTION_RATE_LIMIT_PER_MINUTE="0", BASTION_AUTH_RATE_LIMIT_PER_MINUTE="0")
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        bearer = {"Authorization": f"Bearer {token}"}
        emails = [f"login{n}@example.com" for n in range(ACCOUNTS)]
        for email in emails:
            daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"}, token)
        ws_url = daemon.url.replace("http://", "ws://") + "/api/v1/ws"
        timeout = aiohttp.ClientTimeout(total=WAIT_S)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            sockets = []
            for _ in range(SOCKETS):
                ws = await session.ws_connect(ws_url, headers=bearer, heartbeat=None)
                await ws.send_json({"type": "subscribe", "topics": ["me"]})
                sockets.append(ws)
            for ws in sockets:  # every socket is authenticated and subscribed before the signal
                while True:
                    msg = await asyncio.wait_for(ws.receive_json(), WAIT_S)
                    if msg["type"] == "subscribed":
                        break

            async def login(n: int) -> int:
                async with session.post(daemon.url + "/api/v1/auth/login",
                                        json={"email": emails[n % ACCOUNTS], "password": ADMIN_PASSWORD}) as response:
                    await response.read()
                    return response.status

            async def get(path: str) -> tuple[int, dict, str]:
                try:
                    async with session.get(daemon.url + path, headers=bearer) as response:
                        body = await response.json(content_type=None)
                        return response.status, body, response.headers.get("Connection", "")
                except aiohttp.ClientConnectionError as exc:
                    raise AssertionError(f"GET {path}: {exc} (no longer served: the drain ended early)") from None

            # Two hashes run at a time, so once the first login is answered the others are in the daemon.
            logins = [asyncio.ensure_future(login(n)) for n in range(LOGINS)]
            done, _ = await asyncio.wait(logins, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            assert done, "no login was answered"
            closes = [asyncio.ensure_future(closed_with(ws)) for ws in sockets]
            daemon.process.send_signal(signal.SIGTERM)

            # The drain: /readyz fails at once (a load balancer's cue to move away) ...
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while (ready := await get("/readyz"))[0] == 200:
                assert asyncio.get_running_loop().time() < deadline, "/readyz never failed after SIGTERM"
                await asyncio.sleep(0.05)
            status, problem, _ = ready
            assert status == 503 and problem["code"] == "service_unavailable", ready
            assert "shutting down" in problem["detail"]
            # ... while the process is alive and new requests are still served, each asking its client to
            # reconnect (elsewhere) ...
            assert (await get("/healthz"))[0] == 200
            status, me, connection = await get("/api/v1/users/me")
            assert (status, me["email"], connection) == (200, ADMIN_EMAIL, "close")
            # ... and no socket has been closed yet: that waits for the drain's end.
            assert not any(close.done() for close in closes), "a WebSocket was closed during the drain"

            codes = await asyncio.gather(*closes)
            statuses = await asyncio.gather(*logins)
        try:
            exit_code = await asyncio.to_thread(daemon.process.wait, DRAIN_S + GRACE_S + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon did not exit within its drain and grace period") from None
    finally:
        daemon.stop()

    assert set(codes) == {1001}, {code: codes.count(code) for code in set(codes)}
    assert statuses == [200] * LOGINS, statuses
    assert exit_code == 0, daemon.log.read_text()[-2000:]


async def test_a_second_signal_ends_the_drain_at_once(tmp_path: Path) -> None:
    """ctrl-c twice: the second SIGINT (or SIGTERM) skips what is left of a 10-minute drain."""
    daemon = start(tmp_path / "data", BASTION_SHUTDOWN_DRAIN_S="600")
    try:
        daemon.process.send_signal(signal.SIGINT)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while True:
                async with session.get(daemon.url + "/readyz") as response:
                    if response.status == 503:
                        break
                assert asyncio.get_running_loop().time() < deadline, "/readyz never failed after SIGINT"
                await asyncio.sleep(0.05)
            async with session.get(daemon.url + "/healthz") as response:
                assert response.status == 200  # still serving: draining
        daemon.process.send_signal(signal.SIGINT)
        try:
            exit_code = await asyncio.to_thread(daemon.process.wait, WAIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError("the second signal did not end the drain") from None
    finally:
        daemon.stop()
    assert exit_code == 0, daemon.log.read_text()[-2000:]
