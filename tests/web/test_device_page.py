"""The web view's part of sign-in for operators: approving a device login at /ui/device (CSRF-protected), and
a login's second factor, through the real app and its pipeline."""

from __future__ import annotations


from daemon.services import device as device_service
from tests.api.test_mfa import code_at
from tests.helpers import PASSWORD
from tests.web.conftest import Tab

ALICE = "alice@example.com"


async def start_device(web) -> dict:
    return await (await web.post("/api/v1/auth/device", json={"client_name": "ci runner"})).json()


async def poll(web, grant: dict) -> dict:
    return await (await web.post("/api/v1/auth/device/token", json={"device_code": grant["device_code"]})).json(
        content_type=None)


async def test_a_signed_in_user_approves_a_device_in_the_web_view(web, monkeypatch):
    monkeypatch.setattr(device_service, "INTERVAL_S", 0)
    grant = await start_device(web)
    tab = Tab(web)
    await tab.log_in(ALICE)
    page = await tab.get(f"/ui/device?user_code={grant['user_code']}")
    assert page.status == 200 and f'value="{grant["user_code"]}"' in tab.html
    decided = await tab.post("/ui/device", {"user_code": grant["user_code"], "action": "approve"})
    assert decided.status == 200 and "approved" in tab.html and "ci runner" in tab.html
    pair = await poll(web, grant)
    assert pair["user"]["email"] == ALICE


async def test_the_device_page_refuses_a_post_without_this_sessions_csrf_token(web, monkeypatch):
    monkeypatch.setattr(device_service, "INTERVAL_S", 0)
    grant = await start_device(web)
    tab = Tab(web)
    await tab.log_in(ALICE)
    await tab.get("/ui/device")
    own = tab.csrf
    for csrf in (None, "0" * 64):
        refused = await tab.post("/ui/device", {"user_code": grant["user_code"], "action": "approve"}, csrf=csrf)
        assert refused.status == 403
    other = Tab(web)
    await other.log_in("admin@example.com")
    await other.get("/ui/device")
    stolen = await tab.post("/ui/device", {"user_code": grant["user_code"], "action": "approve"}, csrf=other.csrf)
    assert stolen.status == 403
    cross_site = await tab.post("/ui/device", {"user_code": grant["user_code"], "action": "approve"}, csrf=own,
                                headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status == 403
    assert (await poll(web, grant))["code"] == "authorization_pending"  # nothing was approved


async def test_an_unknown_code_and_a_bad_action_are_refused_on_the_page(web):
    tab = Tab(web)
    await tab.log_in(ALICE)
    await tab.get("/ui/device")
    unknown = await tab.post("/ui/device", {"user_code": "BCDF-GHJK", "action": "approve"})
    assert unknown.status == 404 and "no such pending device login" in tab.html
    await tab.get("/ui/device")
    bad = await tab.post("/ui/device", {"user_code": "BCDF-GHJK", "action": "maybe"})
    assert bad.status == 422


async def test_the_device_page_sends_a_visitor_without_a_session_to_log_in(web):
    page = await Tab(web).get("/ui/device?user_code=BCDF-GHJK")
    assert page.status == 303 and page.headers["Location"] == "/ui/login"


async def test_a_user_with_mfa_logs_in_to_the_web_view_with_a_code(web):
    api_login = await (await web.post("/api/v1/auth/login", json={"email": ALICE, "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {api_login['access_token']}"}
    secret = (await (await web.post("/api/v1/auth/mfa/totp", json={"password": PASSWORD}, headers=headers)).json())["secret"]
    await web.post("/api/v1/auth/mfa/totp/confirm", json={"code": code_at(secret, -1)}, headers=headers)

    tab = Tab(web)
    await tab.get("/ui/login")
    asked = await tab.post("/ui/login", {"email": ALICE, "password": PASSWORD})
    assert asked.status == 200 and 'name="code"' in tab.html
    wrong = await tab.post("/ui/login/code", {"mfa_token": _field(tab.html, "mfa_token"), "code": "000000"})
    assert wrong.status == 401 and 'name="code"' in tab.html  # asked again, with the same token
    right = await tab.post("/ui/login/code", {"mfa_token": _field(tab.html, "mfa_token"), "code": code_at(secret)})
    assert right.status == 303 and right.headers["Location"] == "/ui/"
    assert (await tab.get("/ui/")).status == 200 and ALICE in tab.html


def _field(html: str, name: str) -> str:
    import re

    return re.search(rf'name="{name}" value="([^"]*)"', html)[1]
