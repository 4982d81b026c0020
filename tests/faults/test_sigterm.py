"""SIGTERM with 500 open WebSockets and logins in flight: the logins finish, every socket is closed with
1001 (going away), and the daemon exits 0 within its grace period."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp

from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, start

SOCKETS = 500
LOGINS = 20
GRACE_S = 20
WAIT_S = 60.0  # bounds on waiting, not performance targets


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int:
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT_S)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            return ws.close_code


async def test_sigterm_finishes_requests_closes_every_socket_with_1001_and_exits_0(tmp_path: Path) -> None:
    daemon = start(tmp_path / "data", BASTION_SHUTDOWN_TIMEOUT_S=str(GRACE_S), BASTION_RATE_LIMIT_PER_MINUTE="0",
                   BASTION_AUTH_RATE_LIMIT_PER_MINUTE="0")
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        ws_url = daemon.url.replace("http://", "ws://") + "/api/v1/ws"
        timeout = aiohttp.ClientTimeout(total=WAIT_S)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            sockets = []
            for _ in range(SOCKETS):
                ws = await session.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}, heartbeat=None)
                await ws.send_json({"type": "subscribe", "topics": ["me"]})
                sockets.append(ws)
            for ws in sockets:  # every socket is authenticated and subscribed before the signal
                while True:
                    msg = await asyncio.wait_for(ws.receive_json(), WAIT_S)
                    if msg["type"] == "subscribed":
                        break

            async def login() -> int:
                async with session.post(daemon.url + "/api/v1/auth/login",
                                        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}) as response:
                    await response.read()
                    return response.status

            # Two hashes run at a time, so once the first login is answered the others are in the daemon.
            logins = [asyncio.ensure_future(login()) for _ in range(LOGINS)]
            done, _ = await asyncio.wait(logins, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            assert done, "no login was answered"
            daemon.process.send_signal(signal.SIGTERM)

            codes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
            statuses = await asyncio.gather(*logins)
        try:
            exit_code = await asyncio.to_thread(daemon.process.wait, GRACE_S + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon did not exit within its grace period") from None
    finally:
        daemon.stop()

    assert set(codes) == {1001}, {code: codes.count(code) for code in set(codes)}
    assert statuses == [200] * LOGINS, statuses
    assert exit_code == 0, daemon.log.read_text()[-2000:]
