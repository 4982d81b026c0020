"""The dashboard's WebSocket: the gateway takes the web view's session cookie in place of a token, from
the daemon's own pages only."""

from __future__ import annotations

import aiohttp
import pytest

from daemon.context import USERS
from tests.helpers import PASSWORD
from tests.web.conftest import COOKIE, Tab

WS = "/api/v1/ws"


async def _logged_in(web, email: str) -> tuple[Tab, str]:
    tab = Tab(web)
    await tab.log_in(email)
    return tab, str(web.make_url("")).rstrip("/")


async def test_a_same_origin_handshake_with_the_session_cookie_needs_no_token(web):
    tab, own = await _logged_in(web, "admin@example.com")
    async with web.ws_connect(WS, headers={"Cookie": f"{COOKIE}={tab.secret}", "Origin": own}) as ws:
        await ws.send_json({"type": "subscribe", "topics": ["users"]})
        assert (await ws.receive_json(timeout=10)) == {"type": "subscribed", "topics": ["users"]}
        await web.app[USERS].create("carol@example.com", PASSWORD, "user", "", None, "test")
        event = await ws.receive_json(timeout=10)
        assert event["event"] == "user.created" and event["data"]["email"] == "carol@example.com"


async def test_the_cookie_does_not_lift_a_users_limits(web):
    tab, own = await _logged_in(web, "alice@example.com")
    async with web.ws_connect(WS, headers={"Cookie": f"{COOKIE}={tab.secret}", "Origin": own}) as ws:
        await ws.send_json({"type": "subscribe", "topics": ["users", "me"]})
        replies = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
    assert {"type": "error", "code": "forbidden", "topic": "users"}.items() <= replies[0].items()
    assert replies[1] == {"type": "subscribed", "topics": ["me"]}


async def test_another_sites_page_cannot_open_the_socket_with_the_cookie(web):
    tab, _ = await _logged_in(web, "admin@example.com")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web.ws_connect(WS, headers={"Cookie": f"{COOKIE}={tab.secret}", "Origin": "http://evil.example.com"})
    assert refused.value.status == 403


async def test_logging_out_closes_the_feed_with_4401(web):
    tab, own = await _logged_in(web, "admin@example.com")
    async with web.ws_connect(WS, headers={"Cookie": f"{COOKIE}={tab.secret}", "Origin": own}) as ws:
        await ws.send_json({"type": "subscribe", "topics": ["me"]})
        assert (await ws.receive_json(timeout=10))["type"] == "subscribed"
        await tab.get("/ui/")
        assert (await tab.post("/ui/logout", {})).status == 303
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4401
