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
    expect(page.locator("#feed-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
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
