"""Passkeys in the web view (WebAuthn, py_webauthn): added from a signed-in session, used alone and as a
second factor, listed and removed by their owner; and the abuse: a replayed assertion, a challenge used
twice, another user's passkey, a removed one, a copied one (its counter behind).

In Chromium, whose virtual authenticator (the DevTools WebAuthn domain) stands in for a platform
authenticator with a PIN, against a real bastiond. WebAuthn needs a secure context and a domain for its rp
id (an IP address is not one), so the browser uses http://localhost, which Chromium counts as secure.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import CDPSession, Page, expect

from daemon.api.webview import COOKIE
from daemon.context import MFA
from daemon.services import passkeys as passkeys_service
from daemon.services.web_sessions import csrf_token
from daemon.settings import Settings, SettingsError
from daemon.stores.sql.passkeys import PasskeyRows
from tests import daemon_process
from tests.conftest import free_port
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon
from tests.helpers import PASSWORD, login
from tests.web.conftest import Tab, _web
from tests.web.test_browser import WAIT_MS, browser  # noqa: F401 (the fixture)

ALICE = "alice@example.com"


@pytest.fixture
def daemon(tmp_path, sql_backend) -> Iterator[Daemon]:
    """On SQLite and on PostgreSQL, with the browser's origin as the one passkeys are for."""
    port = free_port()
    database = {"BASTION_DATABASE_URL": sql_backend} if sql_backend else {}
    running = daemon_process.start(tmp_path / "data", port, BASTION_WEBAUTHN_ORIGINS=f"http://localhost:{port}",
                                   **database)
    try:
        running.create_admin()
        running.call("POST", "/api/v1/users", {"email": ALICE, "password": ADMIN_PASSWORD}, token=running.admin_token())
        yield running
    finally:
        running.stop()


def _site(daemon: Daemon) -> str:
    return daemon.url.replace("127.0.0.1", "localhost")


def _with_authenticator(browser) -> tuple[Page, CDPSession, str]:  # noqa: F811 (the fixture's name)
    """A page whose browser has a platform authenticator that verifies its user (as with a PIN)."""
    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable", {"enableUI": False})
    added = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return page, devtools, added["authenticatorId"]


def _log_in(page: Page, daemon: Daemon, email: str) -> None:
    page.goto(_site(daemon) + "/ui/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login")


def _log_out(page: Page) -> None:
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()


def _add_passkey(page: Page, daemon: Daemon, name: str) -> None:
    page.goto(_site(daemon) + "/ui/passkeys")
    page.fill("#new-passkey input[name=name]", name)
    page.fill("#new-passkey input[name=password]", ADMIN_PASSWORD)
    page.click("#add-passkey")
    expect(page.locator("#passkeys td[data-label=Name]", has_text=name)).to_be_visible()


def _audit(daemon: Daemon, event: str, token: str) -> list[dict]:
    """`token`: the admin's, taken before their password alone stopped being enough."""
    return daemon.call("GET", f"/api/v1/audit?event={event}", token=token)["items"]


def _password_login(daemon: Daemon, email: str) -> str:
    """What a password login through the API answers: "ok", or the problem's code."""
    try:
        daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": ADMIN_PASSWORD})
    except daemon_process.Refused as exc:
        return str(exc)
    return "ok"


# The ceremony done by hand in the page (the page's own script would send the form at once): the options
# for this browser (and login), then `times` answers of the authenticator to them, as JSON.
_ANSWERS = """async ([mfaToken, times, allow]) => {
  const body = new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value});
  if (mfaToken) body.set("mfa_token", mfaToken);
  const options = await (await fetch("/ui/login/passkey/options", {method: "POST", body})).json();
  if (allow) options.allowCredentials = allow.map((id) => ({id, type: "public-key"}));
  const answers = [];
  for (let i = 0; i < times; i++) {
    const found = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
    answers.push(JSON.stringify(found.toJSON()));
  }
  return answers;
}"""


def _answers(page: Page, times: int = 1, mfa_token: str | None = None, allow: list[str] | None = None) -> list[str]:
    return page.evaluate(_ANSWERS, [mfa_token, times, allow])


def _browser_state(page: Page) -> tuple[str, str]:
    """This browser's session cookie secret and the page's CSRF token, to send forms from here as it would."""
    (secret,) = [c["value"] for c in page.context.cookies() if c["name"] == COOKIE]
    return secret, page.locator("input[name=csrf]").first.get_attribute("value")


def _post(daemon: Daemon, path: str, fields: dict[str, str], secret: str) -> tuple[int, str, str]:
    """A form post with that browser's cookie: status, Location, and the body."""
    parts = urlsplit(daemon.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("POST", path, body=urlencode(fields), headers={
            "Cookie": f"{COOKIE}={secret}", "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        return response.status, response.getheader("Location", ""), response.read().decode()
    finally:
        conn.close()


def _url_b64(standard: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(standard)).decode().rstrip("=")


def test_a_passkey_is_added_with_the_password_then_signs_in_alone_and_as_a_second_factor(daemon, browser):  # noqa: F811
    page, _, _ = _with_authenticator(browser)
    token = daemon.admin_token()
    _log_in(page, daemon, ADMIN_EMAIL)
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL)

    # A wrong password gets no options, so nothing is made.
    page.goto(_site(daemon) + "/ui/passkeys")
    page.fill("#new-passkey input[name=password]", "not the password")
    page.click("#add-passkey")
    expect(page.locator("#passkey-status")).to_contain_text("the password is wrong")
    expect(page.locator("#passkeys tr[data-passkey-id]")).to_have_count(0)

    _add_passkey(page, daemon, "laptop")
    assert "mfa_required" in _password_login(daemon, ADMIN_EMAIL)  # a passkey is a second factor
    _log_out(page)

    # Alone: the login page's button, no email, no password.
    page.click("#passkey")
    expect(page).to_have_url(_site(daemon) + "/ui/", timeout=WAIT_MS)
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL)
    _log_out(page)

    # After the password, in place of a code.
    _log_in(page, daemon, ADMIN_EMAIL)
    expect(page.locator("input[name=code]")).to_be_visible()
    page.click("#passkey")
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL)

    uses = [e["detail"]["purpose"] for e in _audit(daemon, "passkey.used", token)]
    assert sorted(uses) == ["second_factor", "sign_in"]
    assert len(_audit(daemon, "passkey.added", token)) == 1 and not _audit(daemon, "passkey.failed", token)
    page.context.close()


def test_a_replayed_assertion_and_a_challenge_used_twice_are_refused(daemon, browser):  # noqa: F811
    page, _, _ = _with_authenticator(browser)
    token = daemon.admin_token()
    _log_in(page, daemon, ADMIN_EMAIL)
    _add_passkey(page, daemon, "laptop")
    _log_out(page)

    # Two good answers (the counter goes up each time) to one challenge: the first signs in, the second
    # is refused, as the challenge is spent.
    first, second = _answers(page, times=2)
    secret, csrf = _browser_state(page)
    status, location, _ = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "credential": first}, secret)
    assert (status, location) == (303, "/ui/")
    status, _, body = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "credential": second}, secret)
    assert status == 401 and "passkey was not accepted" in body
    # The first answer, replayed, is refused too.
    status, _, _ = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "credential": first}, secret)
    assert status == 401
    # A fresh challenge of this browser cannot be answered by another browser's cookie.
    page.goto(_site(daemon) + "/ui/login")
    (answer,) = _answers(page)
    stranger_secret = "A" * 43
    status, _, _ = _post(daemon, "/ui/login/passkey", {"csrf": csrf_token(stranger_secret), "credential": answer},
                         stranger_secret)
    assert status == 401
    reasons = [e["detail"]["reason"] for e in _audit(daemon, "passkey.failed", token)]
    assert reasons == ["challenge"] * 3
    page.context.close()


def test_another_users_passkey_and_a_removed_one_are_refused(daemon, browser):  # noqa: F811
    page, devtools, authenticator = _with_authenticator(browser)
    token = daemon.admin_token()
    _log_in(page, daemon, ADMIN_EMAIL)
    _add_passkey(page, daemon, "admin's key")
    admin_passkey = page.locator("#passkeys tr[data-passkey-id]").first.get_attribute("data-passkey-id")
    _log_out(page)
    _log_in(page, daemon, ALICE)
    _add_passkey(page, daemon, "alice's key")
    expect(page.locator("#passkeys tr[data-passkey-id]")).to_have_count(1)  # her own only

    # Alice cannot remove the admin's passkey (404: it is not there for her).
    secret, csrf = _browser_state(page)
    status, _, _ = _post(daemon, f"/ui/passkeys/{admin_passkey}/remove", {"csrf": csrf, "confirmed": "yes"}, secret)
    assert status == 404
    _log_out(page)

    # Alice's password, then the admin's passkey (same authenticator) for her second step: refused.
    users = {u["email"]: u["id"] for u in daemon.call("GET", "/api/v1/users", token=token)["items"]}
    keys = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    by_user = {base64.b64decode(k["userHandle"]).decode(): _url_b64(k["credentialId"]) for k in keys}
    _log_in(page, daemon, ALICE)
    mfa_token = page.locator("input[name=mfa_token]").first.get_attribute("value")
    (theirs,) = _answers(page, mfa_token=mfa_token, allow=[by_user[users[ADMIN_EMAIL]]])
    secret, csrf = _browser_state(page)
    status, _, body = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "mfa_token": mfa_token, "credential": theirs},
                            secret)
    assert status == 401 and 'name="mfa_token"' in body  # the login goes on: her own passkey still works
    (own,) = _answers(page, mfa_token=mfa_token)
    status, location, _ = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "mfa_token": mfa_token, "credential": own},
                                secret)
    assert (status, location) == (303, "/ui/")

    # The admin removes their passkey; the authenticator still holds it, and it no longer signs in.
    page.context.clear_cookies()
    _log_in(page, daemon, ADMIN_EMAIL)
    page.click("#passkey")
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL)
    page.goto(_site(daemon) + "/ui/passkeys")
    page.click(f"#passkeys tr[data-passkey-id='{admin_passkey}'] button")
    page.click("#confirm")
    expect(page.locator("#passkeys tr[data-passkey-id]")).to_have_count(0)
    assert _password_login(daemon, ADMIN_EMAIL) == "ok"  # the password alone again: no second factor left
    _log_out(page)
    (removed,) = _answers(page, allow=[by_user[users[ADMIN_EMAIL]]])
    secret, csrf = _browser_state(page)
    status, _, _ = _post(daemon, "/ui/login/passkey", {"csrf": csrf, "credential": removed}, secret)
    assert status == 401

    reasons = sorted(e["detail"]["reason"] for e in _audit(daemon, "passkey.failed", token))
    assert reasons == ["another_users_credential", "unknown_credential"]
    assert [e["detail"]["passkey_id"] for e in _audit(daemon, "passkey.removed", token)] == [admin_passkey]
    page.context.close()


def test_a_copied_passkey_whose_counter_is_behind_is_refused_and_audited(daemon, browser):  # noqa: F811
    page, devtools, authenticator = _with_authenticator(browser)
    token = daemon.admin_token()
    _log_in(page, daemon, ADMIN_EMAIL)
    _add_passkey(page, daemon, "laptop")
    _log_out(page)
    page.click("#passkey")
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL)
    _log_out(page)

    # The key as a copy of it would be: same private key, its counter from before the last use.
    (key,) = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert key["signCount"] >= 1
    devtools.send("WebAuthn.removeCredential", {"authenticatorId": authenticator, "credentialId": key["credentialId"]})
    devtools.send("WebAuthn.addCredential", {"authenticatorId": authenticator,
                                             "credential": {**key, "signCount": key["signCount"] - 1}})
    page.click("#passkey")
    expect(page.locator("#problem")).to_contain_text("counter went back")
    (clone,) = _audit(daemon, "passkey.clone_suspected", token)
    assert clone["detail"]["sign_count"] == key["signCount"]
    page.context.close()


# --- the forms' edges, through the real app in-process (no browser needed to be refused) ------------------

SITE = "http://localhost:8420"


@pytest.fixture
async def web_passkeys(aiohttp_client, backend_settings):
    return await _web(aiohttp_client, Settings(**{**backend_settings.__dict__, "webauthn_origins": (SITE,)}))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged_answer(challenge: str) -> str:
    """An assertion for a credential nobody registered, answering `challenge` from this site."""
    client_data = json.dumps({"type": "webauthn.get", "challenge": challenge, "origin": SITE}).encode()
    return json.dumps({"id": _b64(b"nobody's key"), "rawId": _b64(b"nobody's key"), "type": "public-key",
                       "response": {"clientDataJSON": _b64(client_data), "authenticatorData": _b64(bytes(37)),
                                    "signature": _b64(b"\x30\x00")}, "clientExtensionResults": {}})


async def test_without_webauthn_origins_there_are_no_passkeys(web):
    tab = Tab(web)
    await tab.get("/ui/login")
    assert 'id="passkey"' not in tab.html
    assert (await tab.post("/ui/login/passkey/options", {})).status == 404
    await tab.log_in(ALICE)
    assert (await tab.get("/ui/passkeys")).status == 404 and "Passkeys</a>" not in tab.html


async def test_adding_a_passkey_needs_the_password_and_this_sessions_csrf_token(web_passkeys):
    tab = Tab(web_passkeys)
    await tab.log_in(ALICE)
    await tab.get("/ui/passkeys")
    assert (await tab.post("/ui/passkeys/options", {"password": ADMIN_PASSWORD}, csrf=None)).status == 403
    await tab.get("/ui/passkeys")
    wrong = await tab.post("/ui/passkeys/options", {"password": "not the password"})
    assert wrong.status == 401 and json.loads(tab.html)["code"] == "invalid_credentials"
    await tab.get("/ui/passkeys")
    nothing = await tab.post("/ui/passkeys/options", {"password": ""})
    assert nothing.status == 422
    await tab.get("/ui/passkeys")
    good = await tab.post("/ui/passkeys/options", {"password": PASSWORD})
    options = json.loads(tab.html)
    assert good.status == 200 and options["rp"] == {"name": "Bastion", "id": "localhost"}
    assert options["user"]["name"] == ALICE and options["excludeCredentials"] == []
    # An answer that is not one, and one to a challenge this browser was never given: nothing is added.
    await tab.get("/ui/passkeys")
    assert (await tab.post("/ui/passkeys", {"name": "x", "credential": "{not json"})).status == 422
    await tab.get("/ui/passkeys")
    assert (await tab.post("/ui/passkeys", {"name": "x", "credential": _forged_answer(_b64(b"0" * 32))})).status == 422
    await tab.get("/ui/passkeys")
    assert 'data-passkey-id' not in tab.html


async def test_a_51st_passkey_is_refused_until_one_is_removed(web_passkeys):
    tab = Tab(web_passkeys)
    await tab.log_in(ALICE)
    user_id = (await login(web_passkeys, ALICE)).user["id"]
    rows = PasskeyRows(web_passkeys.server.app[MFA]._rows.db)
    for i in range(50):  # as many as `bastiond import` carries for one account
        assert await rows.insert({
            "id": f"pk_01jcap{i:02}", "user_id": user_id, "credential_id": _b64(f"cred-{i}".encode()),
            "public_key": b"\x01", "sign_count": 0, "name": f"Key {i}", "aaguid": "", "transports": "",
            "backed_up": False, "created_at": "2026-12-07T00:00:00.000000Z", "last_used_at": None}, 50) == "added"
    await tab.get("/ui/passkeys")
    full = await tab.post("/ui/passkeys/options", {"password": PASSWORD})
    assert full.status == 409 and "at most 50 passkeys" in json.loads(tab.html)["detail"]
    await tab.get("/ui/passkeys")
    answer = await tab.post("/ui/passkeys", {"name": "x", "credential": _forged_answer(_b64(b"0" * 32))})
    assert answer.status == 409 and "at most 50 passkeys" in tab.html
    assert len(await rows.of_user(user_id)) == 50
    await tab.get("/ui/passkeys")
    await tab.post("/ui/passkeys/pk_01jcap07/remove", {"name": "Key 7", "confirmed": "yes"})
    await tab.get("/ui/passkeys")
    assert (await tab.post("/ui/passkeys/options", {"password": PASSWORD})).status == 200


async def test_an_expired_challenge_is_refused_before_the_answer_is_looked_at(web_passkeys, monkeypatch):
    admin = await login(web_passkeys, "admin@example.com")
    tab = Tab(web_passkeys)
    await tab.get("/ui/login")
    page_csrf = tab.csrf
    await tab.post("/ui/login/passkey/options", {})
    live = json.loads(tab.html)["challenge"]
    assert json.loads(tab.html)["userVerification"] == "required"  # alone, a passkey must verify its user
    monkeypatch.setattr(passkeys_service, "CHALLENGE_TTL", timedelta(seconds=-1))
    await tab.post("/ui/login/passkey/options", {}, csrf=page_csrf)
    expired = json.loads(tab.html)["challenge"]
    for challenge in (live, expired):
        refused = await tab.post("/ui/login/passkey", {"credential": _forged_answer(challenge)}, csrf=page_csrf)
        assert refused.status == 401 and "passkey was not accepted" in tab.html
    audit = await (await web_passkeys.get("/api/v1/audit", params={"event": "passkey.failed"},
                                          headers=admin.headers)).json()
    # The live challenge was spent and the unknown key refused; the expired one never got that far.
    assert sorted(e["detail"]["reason"] for e in audit["items"]) == ["challenge", "unknown_credential"]


@pytest.mark.parametrize("env, says", [
    ({"BASTION_WEBAUTHN_RP_ID": "example.com"}, "needs BASTION_WEBAUTHN_ORIGINS"),
    ({"BASTION_WEBAUTHN_ORIGINS": "https://bastion.example.com", "BASTION_WEBAUTHN_RP_ID": "other.example"},
     "is not on the relying party id"),
    ({"BASTION_WEBAUTHN_ORIGINS": "https://bastion.example.com,https://evil.example.net"}, "is not on"),
])
def test_webauthn_settings_that_no_browser_would_accept_are_refused_at_start(env, says):
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_the_rp_id_defaults_to_the_first_origins_host_and_may_be_a_parent_domain():
    assert Settings.from_env({"BASTION_WEBAUTHN_ORIGINS": "https://bastion.example.com"}).rp_id == "bastion.example.com"
    both = Settings.from_env({"BASTION_WEBAUTHN_ORIGINS": "https://a.example.com,https://b.example.com",
                              "BASTION_WEBAUTHN_RP_ID": "example.com"})
    assert both.rp_id == "example.com" and both.passkeys
