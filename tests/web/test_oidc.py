"""Single sign-on with OpenID Connect, end to end: Debian's Chromium (Playwright) signs in to a real bastiond
through a real OpenID provider (the npm package oidc-provider, tests/oidc_provider), on another site than
the daemon (localhost against 127.0.0.1), as a person would: the provider's login and consent pages, and
back. The ID tokens no real provider would issue (a wrong nonce, issuer or audience, another key, expired)
come from a stand-in that forges them (tests/standins/oidc_forger.py), each of which must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, expect

from daemon.api.webview import COOKIE, SSO_COOKIE
from daemon.settings import Settings, SettingsError
from tests import daemon_process
from tests.api.test_mfa import code_at
from tests.conftest import free_port
from tests.daemon_process import ADMIN_PASSWORD, Daemon
from tests.oidc_provider import RunningProvider, provider
from tests.standins import oidc_forger
from tests.web.test_browser import WAIT_MS, browser  # noqa: F401 (the fixture)

ALICE_PASSWORD = ADMIN_PASSWORD


def _start(tmp_path, issuer: str, client_id: str, client_secret: str, port: int) -> Daemon:
    running = daemon_process.start(
        tmp_path / "data", port, BASTION_OIDC_ISSUER=issuer, BASTION_OIDC_CLIENT_ID=client_id,
        BASTION_OIDC_CLIENT_SECRET=client_secret, BASTION_OIDC_ALLOWED_DOMAINS="example.com")
    running.create_admin()
    return running


@pytest.fixture
def sso(tmp_path) -> Iterator[tuple[Daemon, RunningProvider]]:
    """A daemon whose web view signs in through the real provider; alice@example.com has an account."""
    port = free_port()
    with provider(f"http://127.0.0.1:{port}/ui/sso/callback") as op:
        running = _start(tmp_path, op.issuer, op.client_id, op.client_secret, port)
        try:
            running.call("POST", "/api/v1/users", {"email": "alice@example.com", "password": ALICE_PASSWORD},
                         token=running.admin_token())
            yield running, op
        finally:
            running.stop()


def _audit(daemon: Daemon, event: str) -> list[dict]:
    return daemon.call("GET", f"/api/v1/audit?event={event}", token=daemon.admin_token())["items"]


def _users(daemon: Daemon) -> dict[str, dict]:
    return {u["email"]: u for u in daemon.call("GET", "/api/v1/users", token=daemon.admin_token())["items"]}


def _at_provider(page: Page, daemon: Daemon, login: str, held: list[str] | None = None) -> None:
    """From the login page through the provider's own pages (its login form, then its consent page, each
    only when it asks) until the browser is back at the daemon, or its way back is `held`."""
    page.goto(daemon.url + "/ui/login")
    page.click("#sso")
    while not page.url.startswith(daemon.url) and not held:
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", "any password: the provider's development login takes any")
            page.click("button[type=submit]")
        elif page.get_by_role("button", name="Continue").count():
            page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()


def _new_page(browser) -> Page:  # noqa: F811 (the fixture's name)
    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    return page


def test_a_first_sign_in_creates_a_user_with_the_default_role_and_the_next_one_finds_it(sso, browser):  # noqa: F811
    daemon, _ = sso
    page = _new_page(browser)
    _at_provider(page, daemon, "carol")
    expect(page).to_have_url(daemon.url + "/ui/", timeout=WAIT_MS)
    expect(page.locator("#who")).to_have_text("carol@example.com")
    carol = _users(daemon)["carol@example.com"]
    assert carol["role"] == "user" and carol["display_name"] == "Carol Example"
    assert carol["email_verified"] is True  # the provider vouched for it
    (linked,) = _audit(daemon, "sso.linked")
    assert linked["target_id"] == carol["id"] and linked["detail"]["created"] is True
    assert linked["detail"]["subject"] == "sub-carol"
    # The browser keeps the session cookie only; the sign-in's own cookie is spent.
    names = {c["name"]: c for c in page.context.cookies()}
    assert SSO_COOKIE not in names and names[COOKIE]["sameSite"] == "Strict"

    # Logged out and back through the provider: the link by `sub` finds the same user, nothing new is made.
    page.click("#logout")
    _at_provider(page, daemon, "carol")
    expect(page.locator("#who")).to_have_text("carol@example.com", timeout=WAIT_MS)
    assert _users(daemon)["carol@example.com"]["id"] == carol["id"]
    assert len(_audit(daemon, "sso.linked")) == 1
    assert sum(e["target_id"] == carol["id"] for e in _audit(daemon, "login.succeeded")) == 2
    page.context.close()


def test_a_sign_in_with_the_email_of_an_existing_account_links_to_it(sso, browser):  # noqa: F811
    daemon, _ = sso
    alice = _users(daemon)["alice@example.com"]
    page = _new_page(browser)
    _at_provider(page, daemon, "alice")
    expect(page.locator("#who")).to_have_text("alice@example.com", timeout=WAIT_MS)
    (linked,) = _audit(daemon, "sso.linked")
    assert linked["target_id"] == alice["id"] and linked["detail"]["created"] is False
    assert len(_users(daemon)) == 2  # the admin and alice: nobody new
    # Her password still works beside it.
    assert daemon.call("POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": ALICE_PASSWORD})
    page.context.close()


@pytest.mark.parametrize(("login", "says"), [
    ("mallory", "did not vouch for this account's email address"),
    ("eve", "accounts of elsewhere.test may not sign in here"),
])
def test_a_provider_account_without_a_verified_email_of_an_allowed_domain_is_refused(sso, browser, login, says):  # noqa: F811
    daemon, _ = sso
    page = _new_page(browser)
    with page.expect_response(lambda r: "/ui/sso/callback" in r.url) as answer:
        _at_provider(page, daemon, login)
    assert answer.value.status == 403
    expect(page.locator("#problem")).to_contain_text(says)
    expect(page.locator("#who")).to_have_count(0)
    assert len(_users(daemon)) == 2
    assert [e["detail"]["reason"] for e in _audit(daemon, "sso.refused")] == [
        "email_unverified" if login == "mallory" else "domain"]
    page.context.close()


def test_a_tampered_state_a_replayed_callback_and_one_in_another_browser_are_refused(sso, browser):  # noqa: F811
    daemon, _ = sso
    page = _new_page(browser)
    # The provider's answer is held back from the daemon until the test sends it on. Playwright's routes do
    # not see a request that a redirect made, and the provider sends the browser back with one: so the
    # DevTools protocol's Fetch domain holds it.
    callbacks: list[str] = []
    devtools = page.context.new_cdp_session(page)

    def hold(event: dict) -> None:
        callbacks.append(event["request"]["url"])
        devtools.send("Fetch.failRequest", {"requestId": event["requestId"], "errorReason": "Aborted"})

    devtools.on("Fetch.requestPaused", hold)
    devtools.send("Fetch.enable", {"patterns": [{"urlPattern": "*/ui/sso/callback*"}]})
    _at_provider(page, daemon, "carol", held=callbacks)
    (genuine,) = callbacks
    devtools.send("Fetch.disable")
    query = dict(parse_qsl(urlsplit(genuine).query))

    # Another browser (an attacker handing a victim their own code) has no sign-in to finish.
    other = _new_page(browser)
    assert other.goto(genuine).status == 401
    expect(other.locator("#problem")).to_contain_text("not started in this browser")
    other.context.close()

    # The right browser, with the state changed.
    tampered = genuine.split("?")[0] + "?" + urlencode({**query, "state": query["state"][:-2] + "xx"})
    assert page.goto(tampered).status == 401
    expect(page.locator("#problem")).to_contain_text("state does not match")
    # The sign-in is spent by that attempt: the genuine answer, replayed, is refused too.
    assert page.goto(genuine).status == 401
    assert "carol@example.com" not in _users(daemon)
    reasons = [e["detail"]["reason"] for e in _audit(daemon, "sso.refused")]
    assert sorted(reasons) == ["no_flow", "no_flow", "state"]
    page.context.close()


def _wrong_code(secret: str) -> str:
    """A code that no step the server accepts now gives."""
    near = {code_at(secret, step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def test_an_account_with_totp_signs_in_with_the_provider_and_then_its_code(sso, browser):  # noqa: F811
    daemon, _ = sso
    alice = daemon.call("POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": ALICE_PASSWORD})
    token = alice["access_token"]
    secret = daemon.call("POST", "/api/v1/auth/mfa/totp", {"password": ALICE_PASSWORD}, token=token)["secret"]
    daemon.call("POST", "/api/v1/auth/mfa/totp/confirm", {"code": code_at(secret, -1)}, token=token)

    page = _new_page(browser)
    with page.expect_response(lambda r: "/ui/sso/callback" in r.url) as answer:
        _at_provider(page, daemon, "alice")
    # The provider vouched for her, and her ID token passed: that is her first factor. The web view asks for the
    # code on the page a password login leads to, and no session exists yet.
    assert answer.value.status == 200
    expect(page.locator("form[action='/ui/login/code'] input[name=code]")).to_be_visible()
    expect(page.locator("#who")).to_have_count(0)
    assert [s["current"] for s in daemon.call("GET", "/api/v1/auth/sessions", token=token)["items"]] == [True]

    page.fill("input[name=code]", _wrong_code(secret))
    with page.expect_response(lambda r: r.url.endswith("/ui/login/code")) as wrong:
        page.click("#verify")
    assert wrong.value.status == 401
    expect(page.locator("#problem")).to_be_visible()
    page.fill("input[name=code]", code_at(secret))
    page.click("#verify")
    expect(page.locator("#who")).to_have_text("alice@example.com", timeout=WAIT_MS)
    sessions = daemon.call("GET", "/api/v1/auth/sessions", token=token)["items"]
    assert len(sessions) == 2
    assert [e["detail"]["method"] for e in _audit(daemon, "mfa.verified")] == ["totp"]
    assert _audit(daemon, "sso.refused") == []
    page.context.close()


@pytest.fixture
def sso_mfa_required(tmp_path) -> Iterator[tuple[Daemon, RunningProvider]]:
    """A daemon whose every user must have a second factor, signing in through the real provider."""
    port = free_port()
    with provider(f"http://127.0.0.1:{port}/ui/sso/callback") as op:
        running = daemon_process.start(
            tmp_path / "data", port, BASTION_OIDC_ISSUER=op.issuer, BASTION_OIDC_CLIENT_ID=op.client_id,
            BASTION_OIDC_CLIENT_SECRET=op.client_secret, BASTION_OIDC_ALLOWED_DOMAINS="example.com",
            BASTION_MFA_REQUIRED_ROLES="user")
        try:
            running.create_admin()
            yield running, op
        finally:
            running.stop()


def test_a_first_sign_in_in_a_role_that_needs_a_second_factor_is_led_through_enrolment(sso_mfa_required, browser):  # noqa: F811
    daemon, _ = sso_mfa_required
    page = _new_page(browser)
    _at_provider(page, daemon, "carol")
    expect(page.locator("#mfa-required")).to_be_visible()
    secret = page.locator("#secret").inner_text()
    expect(page.locator("#who")).to_have_count(0)
    carol = _users(daemon)["carol@example.com"]
    assert carol["id"] not in {e["target_id"] for e in _audit(daemon, "login.succeeded")}  # no session before the code
    page.fill("input[name=code]", code_at(secret))
    page.click("#confirm-totp")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")
    expect(page.locator("#who")).to_have_text("carol@example.com", timeout=WAIT_MS)
    assert _users(daemon)["carol@example.com"]["mfa_enabled"] is True
    page.context.close()


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> Iterator[tuple[Daemon, oidc_forger.Forger]]:
    port = free_port()
    with oidc_forger.forging_provider() as forger:
        running = _start(tmp_path_factory.mktemp("forged"), forger.issuer, oidc_forger.CLIENT_ID,
                         oidc_forger.CLIENT_SECRET, port)
        try:
            yield running, forger
        finally:
            running.stop()


@pytest.mark.parametrize("spoil", [None, *oidc_forger.SPOILS])
def test_an_id_token_with_a_wrong_nonce_issuer_audience_key_or_expiry_is_refused(forged, browser, spoil):  # noqa: F811
    """Without a spoil the stand-in's sign-in works (so each refusal is the spoil's doing)."""
    daemon, forger = forged
    forger.spoil = spoil
    page = _new_page(browser)
    page.goto(daemon.url + "/ui/login")
    with page.expect_response(lambda r: "/ui/sso/callback" in r.url) as answer:
        page.click("#sso")
    if spoil is None:
        assert answer.value.status == 200
        expect(page.locator("#who")).to_have_text("carol@example.com", timeout=WAIT_MS)
    else:
        assert answer.value.status == 401
        expect(page.locator("#problem")).to_contain_text("ID token did not pass its checks")
        expect(page.locator("#who")).to_have_count(0)
        assert page.goto(daemon.url + "/ui/").url == daemon.url + "/ui/login"
    page.context.close()


# Without a browser: what is refused before anything is sent to a provider.

def test_the_three_oidc_settings_go_together():
    with pytest.raises(SettingsError, match="go together"):
        Settings.from_env({"BASTION_OIDC_ISSUER": "https://id.example.com", "BASTION_OIDC_CLIENT_ID": "bastion"})
    with pytest.raises(SettingsError, match="BASTION_OIDC_ALLOWED_DOMAINS"):
        Settings.from_env({"BASTION_OIDC_ALLOWED_DOMAINS": "https://example.com"})
    assert Settings.from_env({"BASTION_OIDC_ALLOWED_DOMAINS": "Example.com, @corp.example"}).oidc_allowed_domains == (
        "example.com", "corp.example")


async def test_without_single_sign_on_the_login_page_offers_none_and_its_routes_are_404(web):
    from tests.web.conftest import Tab

    tab = Tab(web)
    await tab.get("/ui/login")
    assert 'id="sso"' not in tab.html
    for path in ("/ui/sso/start", "/ui/sso/callback?state=x&code=y"):
        response = await tab.get(path)
        assert response.status == 404, path
        assert "single sign-on is not configured" in tab.html
