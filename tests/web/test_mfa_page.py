"""TOTP in the web view (API.md, "Auth for operators"): a signed-in user sets it up with the password, an SVG
QR code and the secret as text, a first code, and the recovery codes shown once, and turns it off with the
password and a code; a role that needs a second factor is led through the same page at login. Through the
real app and its pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from daemon.context import MFA
from daemon.settings import Settings
from daemon.stores.sql.passkeys import PasskeyRows
from tests.api.test_mfa import code_at
from tests.helpers import PASSWORD
from tests.web.conftest import Tab, _web

ALICE = "alice@example.com"


def _secret(html: str) -> str:
    return re.search(r'id="secret">([A-Z2-7]+)<', html)[1]


def _recovery_codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([A-Z0-9-]{19})</code></li>", html)


async def _me(web, email: str) -> dict:
    login = await (await web.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json(
        content_type=None)
    return login


async def test_a_signed_in_user_enrols_with_the_password_a_qr_code_and_a_first_code(web_both):
    tab = Tab(web_both)
    await tab.log_in(ALICE)
    assert (await tab.get("/ui/mfa")).status == 200 and 'action="/ui/mfa/totp"' in tab.html
    shown = await tab.post("/ui/mfa/totp", {"password": PASSWORD})
    assert shown.status == 200 and "<svg" in tab.html and 'id="qr"' in tab.html
    secret = _secret(tab.html)
    assert "<script" not in tab.html.split('id="qr"')[1].split("</div>")[0]  # the QR code is drawn, not scripted
    wrong = await tab.post("/ui/mfa/totp/confirm", {"code": "000000"})
    assert wrong.status == 401 and 'action="/ui/mfa/totp/confirm"' in tab.html  # asked again
    done = await tab.post("/ui/mfa/totp/confirm", {"code": code_at(secret, -1)})
    codes = _recovery_codes(tab.html)
    assert done.status == 200 and len(set(codes)) == 10
    assert (await tab.get("/ui/mfa")).status == 200 and "TOTP is on" in tab.html
    assert all(code not in tab.html for code in codes)  # shown once
    # The next login asks for a code, and a recovery code is one.
    assert (await _me(web_both, ALICE))["code"] == "mfa_required"
    again = Tab(web_both)
    await again.get("/ui/login")
    await again.post("/ui/login", {"email": ALICE, "password": PASSWORD})
    assert (await again.post("/ui/login/code", {"mfa_token": _field(again.html, "mfa_token"),
                                                "code": codes[0]})).status == 303


async def test_enrolment_refuses_a_wrong_password_and_changes_nothing(web):
    tab = Tab(web)
    await tab.log_in(ALICE)
    await tab.get("/ui/mfa")
    refused = await tab.post("/ui/mfa/totp", {"password": "not the password"})
    assert refused.status == 401 and "<svg" not in tab.html and 'id="problem"' in tab.html
    empty = await tab.post("/ui/mfa/totp", {"password": ""})
    assert empty.status == 422
    # Nothing waits for a first code.
    nothing = await tab.post("/ui/mfa/totp/confirm", {"code": "123456"})
    assert nothing.status == 409
    assert (await _me(web, ALICE))["user"]["mfa_enabled"] is False


async def test_the_enrolment_forms_refuse_a_post_without_this_sessions_csrf_token(web):
    tab = Tab(web)
    await tab.log_in(ALICE)
    await tab.get("/ui/mfa")
    for csrf in (None, "0" * 64):
        assert (await tab.post("/ui/mfa/totp", {"password": PASSWORD}, csrf=csrf)).status == 403
    await tab.get("/ui/mfa")
    cross_site = await tab.post("/ui/mfa/totp", {"password": PASSWORD},
                                headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status == 403
    await tab.get("/ui/mfa")
    assert (await tab.post("/ui/mfa/totp/confirm", {"code": "123456"})).status == 409  # nothing was started


async def test_the_mfa_page_sends_a_visitor_without_a_session_to_log_in(web):
    page = await Tab(web).get("/ui/mfa")
    assert page.status == 303 and page.headers["Location"] == "/ui/login"


@pytest.fixture
async def required(aiohttp_client, backend_settings):
    return await _web(aiohttp_client, Settings(**{**backend_settings.__dict__, "mfa_required_roles": ("admin",)}))


async def test_a_role_that_needs_a_second_factor_is_led_through_enrolment_at_login(required):
    tab = Tab(required)
    await tab.get("/ui/login")
    led = await tab.post("/ui/login", {"email": "admin@example.com", "password": PASSWORD})
    assert led.status == 200 and "<svg" in tab.html and 'id="mfa-required"' in tab.html
    assert 'name="password"' not in tab.html  # the login's password was enough to start
    secret, token, before = _secret(tab.html), _field(tab.html, "mfa_token"), tab.secret
    assert (await Tab(required, secret=before).get("/ui/")).status == 303  # no session before the first code
    wrong = await tab.post("/ui/mfa/totp/confirm", {"mfa_token": token, "code": "000000"})
    assert wrong.status == 401 and _field(tab.html, "mfa_token") == token  # asked again, same token
    done = await tab.post("/ui/mfa/totp/confirm", {"mfa_token": token, "code": code_at(secret)})
    assert done.status == 200 and len(_recovery_codes(tab.html)) == 10
    assert tab.secret != before  # a new session, in a new cookie
    assert (await tab.get("/ui/")).status == 200 and "admin@example.com" in tab.html
    # The token is spent: the same confirmation again is sent back to the login form.
    replay = Tab(required, secret=before)
    await replay.get("/ui/login")
    again = await replay.post("/ui/mfa/totp/confirm", {"mfa_token": token, "code": code_at(secret, 1)})
    assert again.status == 401 and 'action="/ui/login"' in replay.html and replay.secret == before
    # The next login asks for a code; other roles log in as before.
    await replay.get("/ui/login")
    await replay.post("/ui/login", {"email": "admin@example.com", "password": PASSWORD})
    assert 'action="/ui/login/code"' in replay.html
    await Tab(required).log_in(ALICE)


def _field(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html)[1]


async def _enrolled(tab: Tab) -> tuple[str, list[str]]:
    await tab.get("/ui/mfa")
    await tab.post("/ui/mfa/totp", {"password": PASSWORD})
    secret = _secret(tab.html)
    await tab.post("/ui/mfa/totp/confirm", {"code": code_at(secret, -1)})
    return secret, _recovery_codes(tab.html)


async def test_a_user_turns_totp_off_with_the_password_and_a_code(web_both):
    tab = Tab(web_both)
    await tab.log_in(ALICE)
    secret, codes = await _enrolled(tab)
    assert (await tab.get("/ui/mfa")).status == 200 and 'action="/ui/mfa/totp/off"' in tab.html
    wrong_password = await tab.post("/ui/mfa/totp/off", {"password": "not the password", "code": code_at(secret)})
    assert wrong_password.status == 401 and 'id="problem"' in tab.html and 'action="/ui/mfa/totp/off"' in tab.html
    wrong_code = await tab.post("/ui/mfa/totp/off", {"password": PASSWORD, "code": "000000"})
    assert wrong_code.status == 401 and 'action="/ui/mfa/totp/off"' in tab.html
    assert (await _me(web_both, ALICE))["code"] == "mfa_required"  # still on
    for csrf in (None, "0" * 64):
        assert (await tab.post("/ui/mfa/totp/off", {"password": PASSWORD, "code": codes[1]}, csrf=csrf)).status == 403
    await tab.get("/ui/mfa")
    off = await tab.post("/ui/mfa/totp/off", {"password": PASSWORD, "code": codes[0]})
    assert off.status == 200 and 'id="notice"' in tab.html and 'action="/ui/mfa/totp"' in tab.html
    assert (await _me(web_both, ALICE))["user"]["mfa_enabled"] is False
    again = await tab.post("/ui/mfa/totp/off", {"password": PASSWORD, "code": codes[1]})
    assert again.status == 409


async def test_a_user_with_a_passkey_alone_may_still_set_totp_up(web):
    """mfa_enabled comes from the passkey; the page said "TOTP is on" and offered no way to set it up."""
    tab = Tab(web)
    await tab.log_in(ALICE)
    user_id = (await _me(web, ALICE))["user"]["id"]
    await PasskeyRows(web.server.app[MFA]._rows.db).insert({
        "id": "pk_01jtestpasskey", "user_id": user_id, "credential_id": "Y3JlZC0x", "public_key": b"\x01",
        "sign_count": 0, "name": "Laptop", "aaguid": "", "transports": "", "backed_up": False,
        "created_at": "2026-12-07T00:00:00.000000Z", "last_used_at": None}, most=50)
    assert (await tab.get("/ui/mfa")).status == 200
    assert "TOTP is on" not in tab.html and 'action="/ui/mfa/totp"' in tab.html
    assert (await tab.post("/ui/mfa/totp", {"password": PASSWORD})).status == 200 and _secret(tab.html)
