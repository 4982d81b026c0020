"""The web view's pages for the links by mail: a forgotten password (login page → /ui/forgot → the mail's
link → /ui/reset) and email verification (/ui/verify-email), with a real SMTP server (aiosmtpd). The token
rides in the link's fragment; Chromium shows that the page's script moves it into the form and out of the
address bar."""

from __future__ import annotations

import dataclasses
import time

import aiohttp
import pytest
from playwright.sync_api import expect

from daemon.app import create_app
from daemon.context import MAIL
from tests import daemon_process
from tests.conftest import free_port
from tests.helpers import PASSWORD, create_user
from tests.smtp_server import Inbox
from tests.web.conftest import Tab
from tests.web.test_browser import WAIT_MS, browser  # noqa: F401 (the fixture)

ALICE = "alice@example.com"
NEW_PASSWORD = "a brand new passphrase"


def _wait_for_mail(inbox: Inbox, to: str):
    """The daemon sends in the background: wait (bounded) for the message to arrive."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not inbox.to(to):
        assert time.monotonic() < deadline, f"no mail to {to}"
        time.sleep(0.05)
    return inbox.to(to)[-1]


def test_a_forgotten_password_is_reset_from_the_login_page_through_the_mails_link(tmp_path, inbox, browser):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daemon = daemon_process.start(tmp_path / "data", port, BASTION_SMTP_URL=inbox.url, BASTION_PUBLIC_URL=url)
    try:
        daemon.create_admin()
        daemon.call("POST", "/api/v1/users", {"email": ALICE, "password": PASSWORD}, token=daemon.admin_token())
        page = browser.new_context().new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url + "/ui/login")
        page.click("#forgot")
        page.fill("input[name=email]", ALICE)
        page.click("#send")
        expect(page.locator("#sent")).to_contain_text("a link to choose a new password is on its way")

        link = inbox.link(_wait_for_mail(inbox, ALICE))
        assert link.startswith(url + "/ui/reset#token=prt_")
        page.goto(link)
        # The script took the token into the form and out of the address bar (and so out of the history).
        expect(page).to_have_url(url + "/ui/reset")
        expect(page.locator("#token-pasted")).to_be_hidden()
        page.fill("input[name=new_password]", NEW_PASSWORD)
        page.fill("input[name=repeat]", NEW_PASSWORD)
        page.click("#reset")
        expect(page.locator("#done")).to_contain_text("every session of your account has ended")

        page.goto(url + "/ui/login")
        page.fill("input[name=email]", ALICE)
        page.fill("input[name=password]", NEW_PASSWORD)
        page.click("#login")
        expect(page.locator("#who")).to_have_text(ALICE)
        # The same link a second time: refused.
        other = browser.new_context().new_page()
        other.set_default_timeout(WAIT_MS)
        other.goto(link)
        other.fill("input[name=new_password]", "somebody else's passphrase")
        other.fill("input[name=repeat]", "somebody else's passphrase")
        with other.expect_response(lambda r: r.url.endswith("/ui/reset") and r.request.method == "POST") as answer:
            other.click("#reset")
        assert answer.value.status == 401
        expect(other.locator("#problem")).to_contain_text("not valid")
        page.context.close()
        other.context.close()
    finally:
        daemon.stop()


@pytest.fixture
async def mail_web(aiohttp_client, settings, inbox):
    settings = dataclasses.replace(settings, smtp_url=inbox.url, public_url="https://bastion.example.com")
    client = await aiohttp_client(create_app(settings), cookie_jar=aiohttp.DummyCookieJar())
    await create_user(client, ALICE)
    return client


async def test_the_forgot_page_answers_alike_for_an_unknown_account(mail_web, inbox):
    pages = []
    for email in (ALICE, "nobody@example.com"):
        tab = Tab(mail_web)
        await tab.get("/ui/forgot")
        response = await tab.post("/ui/forgot", {"email": email})
        assert response.status == 202
        pages.append(tab.html.replace(email, "EMAIL").replace(tab.csrf if 'name="csrf"' in tab.html else "", ""))
    assert pages[0] == pages[1]
    await mail_web.app[MAIL].settled()
    assert [m["To"] for m in inbox.messages] == [ALICE]


async def test_the_reset_and_verify_pages_refuse_a_wrong_token_and_mismatched_passwords(mail_web, inbox):
    tab = Tab(mail_web)
    await tab.get("/ui/reset")
    wrong = await tab.post("/ui/reset", {"token": "prt_wrong", "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert wrong.status == 401 and 'id="problem"' in tab.html
    short = await tab.post("/ui/reset", {"token": "prt_wrong", "new_password": "short", "repeat": "short"})
    assert short.status == 422 and "new_password" in tab.html
    differ = await tab.post("/ui/reset", {"token": "prt_x", "new_password": NEW_PASSWORD, "repeat": "something else"})
    assert differ.status == 422 and "differ" in tab.html
    forged = await tab.post("/ui/reset", {"token": "prt_x", "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
                            csrf=None)
    assert forged.status == 403

    await tab.get("/ui/verify-email")
    bad = await tab.post("/ui/verify-email", {"token": "bev_wrong"})
    assert bad.status == 401 and 'id="problem"' in tab.html
    await tab.log_in(ALICE)  # the password is unchanged by all of the above


async def test_a_verification_link_is_used_on_its_page(mail_web, inbox):
    tab = Tab(mail_web)
    await tab.log_in(ALICE)
    api_login = await (await mail_web.post("/api/v1/auth/login", json={"email": ALICE, "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {api_login['access_token']}"}
    assert (await mail_web.post("/api/v1/auth/verify-email/request", headers=headers)).status == 202
    await mail_web.app[MAIL].settled()
    token = inbox.token(inbox.to(ALICE)[0])
    await tab.get("/ui/verify-email")
    done = await tab.post("/ui/verify-email", {"token": token})
    assert done.status == 200 and 'id="done"' in tab.html
    me = await (await mail_web.get("/api/v1/users/me", headers=headers)).json()
    assert me["email_verified"] is True


async def test_without_mail_the_login_page_has_no_forgot_link(web):
    tab = Tab(web)
    await tab.get("/ui/login")
    assert 'id="forgot"' not in tab.html
    await tab.get("/ui/forgot")
    response = await tab.post("/ui/forgot", {"email": ALICE})
    assert response.status == 404 and "BASTION_SMTP_URL" in tab.html
