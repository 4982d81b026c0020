"""The web view in a real browser: Debian's Chromium, driven by Playwright, against a real bastiond.

One journey, as a person would take it: log in, watch an event arrive live on the dashboard, use a
form, meet a forged form from another site (refused), log out. A screenshot of the dashboard is kept
in test-artifacts/.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from daemon.api.webview import COOKIE
from tests import daemon_process
from tests.conftest import free_port
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = daemon_process.ROOT / "test-artifacts"
WAIT_MS = 15_000  # an upper bound for the page to show what it should; never a duration we assert


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with daemon_process.with_admin(tmp_path / "data") as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def attacker_site() -> Iterator[dict[str, str]]:
    """Another site (localhost is not the same site as 127.0.0.1) serving a page that posts a form to
    the daemon as soon as it loads. The test fills `pages["/"]` before visiting it."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pages["url"] = f"http://localhost:{server.server_address[1]}/"
    try:
        yield pages
    finally:
        server.shutdown()
        server.server_close()


def _forged_form(action: str) -> str:
    return f"""<!doctype html><title>You won a prize</title>
<form id="prize" method="post" action="{action}">
  <input name="action" value="disable"><input name="csrf" value="{'0' * 64}">
</form>
<script>document.getElementById("prize").submit();</script>"""


def _status_without_following(url: str, path: str, secret: str) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("GET", path, headers={"Cookie": f"{COOKIE}={secret}"})
        response = conn.getresponse()
        return response.status, response.getheader("Location", "")
    finally:
        conn.close()


def test_a_browser_logs_in_sees_events_live_is_protected_from_forged_forms_and_logs_out(daemon, browser, attacker_site):
    admin_token = daemon.admin_token()
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    # Failed loads are expected (the forged post's 403); anything else logged as an error is a fault,
    # a script or stylesheet the Content-Security-Policy blocked first of all.
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    # Log in: an anonymous visit lands on the login form.
    page.goto(daemon.url + "/ui/")
    expect(page).to_have_url(daemon.url + "/ui/login", timeout=WAIT_MS)
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login")
    expect(page).to_have_url(daemon.url + "/ui/", timeout=WAIT_MS)
    expect(page.locator("#who")).to_have_text(ADMIN_EMAIL, timeout=WAIT_MS)

    # The session is a cookie the page's scripts cannot read, and nothing else is stored in the browser.
    (cookie,) = [c for c in context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    assert "token" not in page.url

    # An event raised through the REST API arrives in the feed, over the cookie-authenticated WebSocket.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    newcomer = daemon.call("POST", "/api/v1/users", {"email": "newcomer@example.com", "password": ADMIN_PASSWORD},
                           token=admin_token)
    arrival = page.locator("#feed li[data-event='user.created']", has_text="newcomer@example.com")
    expect(arrival).to_be_visible(timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-dashboard.png"), full_page=True)

    # A forged form on another site is refused, and changes nothing.
    action = f"{daemon.url}/ui/users/{newcomer['id']}/status"
    attacker_site["/"] = _forged_form(action)
    with page.expect_response(action) as refused:
        page.goto(attacker_site["url"])
    assert refused.value.status == 403
    assert daemon.call("GET", f"/api/v1/users/{newcomer['id']}", token=admin_token)["disabled"] is False

    # The real form on the users page, with its session's token, goes through.
    page.goto(daemon.url + "/ui/users")
    row = page.locator(f"tr[data-user-id='{newcomer['id']}']")
    row.get_by_role("button", name="Disable").click()
    page.click("#confirm")  # the question page: disabling takes the user's sessions away
    expect(row.locator(".status-cell")).to_have_text("disabled", timeout=WAIT_MS)
    assert daemon.call("GET", f"/api/v1/users/{newcomer['id']}", token=admin_token)["disabled"] is True

    # Log out: back to the login form, and the old cookie opens nothing any more.
    page.click("#logout")
    expect(page).to_have_url(daemon.url + "/ui/login", timeout=WAIT_MS)
    page.goto(daemon.url + "/ui/")
    expect(page).to_have_url(daemon.url + "/ui/login", timeout=WAIT_MS)
    assert _status_without_following(daemon.url, "/ui/", cookie["value"]) == (303, "/ui/login")

    # Every page worked under the Content-Security-Policy: nothing was blocked, nothing threw.
    assert not problems, problems
    context.close()


WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def _fits(page, shot: str) -> None:
    """The page is as wide as the screen (nothing to scroll sideways), and its screenshot is kept."""
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{shot}: the page is {width} px wide"
    # Nor does a table scroll inside its box: a row's buttons (Revoke, End) would be off screen.
    scrolled = page.evaluate("() => [...document.querySelectorAll('.table-wrap')]"
                             ".filter(box => box.scrollWidth > box.clientWidth).map(box => box.firstElementChild.id)")
    assert not scrolled, f"{shot}: these tables scroll sideways: {scrolled}"


@pytest.mark.parametrize("screen", WIDTHS)
def test_every_page_is_live_asks_before_destroying_and_fits_the_screen(daemon, browser, screen):
    """An admin's round of the pages at desktop and phone widths: the dashboard's counts and events,
    the users page kept live and its search kept across a confirmed disable and a role change, a key
    shown once then revoked, a session ended, a collection created and deleted."""
    ARTIFACTS.mkdir(exist_ok=True)
    token = daemon.admin_token()  # a second session of the admin's, for the sessions page
    context = browser.new_context(viewport=WIDTHS[screen], is_mobile=screen == "phone", has_touch=screen == "phone")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    live = page.locator("#live-status")

    page.goto(daemon.url + "/ui/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login")
    expect(page).to_have_url(daemon.url + "/ui/", timeout=WAIT_MS)

    # The dashboard is not empty: counts, and the logins that already happened.
    expect(page.locator("[data-count='Users']")).to_have_text("1")
    expect(page.locator("[data-count='Sessions']")).to_have_text("2")
    expect(page.locator("#feed li[data-event='audit.recorded']", has_text="login.succeeded").first).to_be_visible()
    expect(live).to_have_attribute("data-state", "live")
    newcomer = daemon.call("POST", "/api/v1/users", {"email": "newcomer@example.com", "password": ADMIN_PASSWORD},
                           token=token)
    expect(page.locator("[data-count='Users']")).to_have_text("2")  # counted live
    expect(page.locator("#feed li[data-event='user.created']", has_text="newcomer@example.com")).to_be_visible()
    _fits(page, f"web-{screen}-dashboard")
    assert page.request.get(daemon.url + "/favicon.ico").status == 200

    # Users: searched, kept live, and the search survives a confirmed disable.
    page.goto(daemon.url + "/ui/users?q=newcomer")
    expect(live).to_have_attribute("data-state", "live")
    row = page.locator(f"tr[data-user-id='{newcomer['id']}']")
    daemon.call("PATCH", f"/api/v1/users/{newcomer['id']}", {"display_name": "Nina Newcomer"}, token=token)
    expect(row).to_contain_text("Nina Newcomer")  # no reload
    expect(page.locator("#users tbody tr")).to_have_count(1)  # the admin does not match the search
    _fits(page, f"web-{screen}-users")
    row.get_by_role("button", name="Disable").click()
    expect(page.locator("#question")).to_have_text(
        "Disable newcomer@example.com? Their sessions end at once and they cannot log in.")
    _fits(page, f"web-{screen}-confirm")
    page.click("#confirm")
    expect(page).to_have_url(daemon.url + "/ui/users?q=newcomer")
    expect(page.get_by_role("searchbox", name="Find users")).to_have_value("newcomer")
    expect(row.locator(".status-cell")).to_have_text("disabled")
    row.locator("select[name=role]").select_option("admin")
    row.get_by_role("button", name="Set").click()
    page.click("#confirm")
    expect(page).to_have_url(daemon.url + "/ui/users?q=newcomer")
    assert daemon.call("GET", f"/api/v1/users/{newcomer['id']}", token=token)["role"] == "admin"

    # API keys: created here and shown once; one made elsewhere appears live; revoking asks first.
    page.goto(daemon.url + "/ui/keys")
    page.fill("#new-key input[name=name]", "deploy bot")
    page.click("#create-key")
    secret = page.locator("#secret").inner_text()
    assert secret.startswith("bst_")
    assert daemon.call("GET", "/api/v1/users/me", token=secret)["email"] == ADMIN_EMAIL
    _fits(page, f"web-{screen}-key-created")
    page.goto(daemon.url + "/ui/keys")
    expect(page.locator("#secret")).to_have_count(0)  # once means once
    expect(live).to_have_attribute("data-state", "live")
    elsewhere = daemon.call("POST", "/api/v1/auth/api-keys", {"name": "from the console", "scopes": ["read"]}, token=token)
    expect(page.locator(f"tr[data-key-id='{elsewhere['id']}']")).to_contain_text("from the console")
    page.locator("tr", has_text="deploy bot").get_by_role("button", name="Revoke").click()
    expect(page.locator("#question")).to_contain_text("Revoke the key deploy bot")
    page.click("#confirm")
    expect(page.locator("tr", has_text="deploy bot")).to_have_count(0)
    with pytest.raises(daemon_process.Refused):
        daemon.call("GET", "/api/v1/users/me", token=secret)
    _fits(page, f"web-{screen}-keys")

    # Sessions: a new login elsewhere appears live; ending it asks first.
    page.goto(daemon.url + "/ui/sessions")
    expect(live).to_have_attribute("data-state", "live")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    daemon.admin_token()
    expect(rows).to_have_count(3)
    _fits(page, f"web-{screen}-sessions")
    page.locator("#sessions tbody tr:not(:has(.tag))").first.get_by_role("button", name="End").click()
    page.click("#confirm")
    expect(rows).to_have_count(2)

    # Collections: created from the form, deleted after the question.
    page.goto(daemon.url + "/ui/collections")
    page.fill("#new-collection input[name=name]", "notes")
    page.fill("#new-collection input[name=dimension]", "3")
    page.select_option("#new-collection select[name=precision]", "i8")
    page.click("#create-collection")
    expect(page).to_have_url(daemon.url + "/ui/collections/notes")
    expect(page.locator("#summary")).to_contain_text("cosine metric, i8 graph")
    expect(live).to_have_attribute("data-state", "live")
    daemon.call("POST", "/api/v1/collections/notes/upsert", {"vectors": [{"id": "a", "values": [1, 2, 3]}]},
                token=daemon.admin_token())  # `token`'s session may be the one ended above
    expect(page.locator("#summary")).to_contain_text("1 vectors of dimension 3")  # no reload
    _fits(page, f"web-{screen}-collection")
    page.click("#delete-collection")
    expect(page.locator("#question")).to_contain_text("Delete the collection notes and its 1 vectors?")
    page.click("#confirm")
    expect(page).to_have_url(daemon.url + "/ui/collections")
    expect(page.locator("#collections")).to_contain_text("No collection yet")
    _fits(page, f"web-{screen}-collections")

    assert not problems, problems  # nothing blocked by the CSP, no script error
    context.close()
