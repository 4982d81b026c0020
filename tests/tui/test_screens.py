"""Each screen's main action, driven with Pilot against a real daemon and the real keyring."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
from collections.abc import Callable

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tests.tui.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon
from tui import config, credentials
from tui.app import BastionApp
from tui.screens.dashboard import DashboardScreen

pytestmark = pytest.mark.usefixtures("keyring_ready")
SIZE = (100, 30)
WAIT_S = 15.0


async def until(pilot: Pilot, condition: Callable[[], object], what: str) -> None:
    """Let the app run until `condition` holds; fail after WAIT_S naming `what`."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not _holds(condition):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; screen is {pilot.app.screen!r}")
        await pilot.pause(0.05)


def _holds(condition: Callable[[], object]) -> bool:
    try:
        return bool(condition())
    except NoMatches:  # the screen is still being composed
        return False


async def log_in(pilot: Pilot, daemon: Daemon, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    app = pilot.app
    app.screen.query_one("#server", Input).value = daemon.url
    app.screen.query_one("#email", Input).value = email
    app.screen.query_one("#password", Input).value = password
    await pilot.click("#connect-button")
    await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_login_stores_the_tokens_in_the_keyring_and_remembers_the_account(daemon: Daemon) -> None:
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        assert app.store.state.me is not None and app.store.state.me.email == ADMIN_EMAIL
    assert credentials.load(daemon.url, ADMIN_EMAIL) is not None
    saved = config.load_state()
    assert saved.last is not None and (saved.last.server, saved.last.email) == (daemon.url, ADMIN_EMAIL)
    assert "password" not in config.state_path().read_text().lower()


async def open_screen(pilot: Pilot, name: str, screen_type: type) -> None:
    pilot.app.open(name)
    # The footer is composed last: once it is there, so is the rest of the screen.
    await until(pilot, lambda: isinstance(pilot.app.screen, screen_type) and pilot.app.screen.query("Footer"),
                f"the {name} screen")


def table_rows(pilot: Pilot) -> list[list[str]]:
    from tui.widgets.table import FilterTable

    return rows(pilot.app.screen.query_one(FilterTable).table)


async def fill(pilot: Pilot, values: dict[str, str]) -> None:
    for name, value in values.items():
        pilot.app.screen.query_one(f"#field-{name}", Input).value = value
    await pilot.click("#ok")


async def test_users_screen_creates_a_user_through_the_form(daemon: Daemon, unique: str) -> None:
    from tui.screens.users import UsersScreen

    app = BastionApp()
    email = f"form-{unique}@example.com"
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#field-email"), "the new-user form")
        await fill(pilot, {"email": email, "password": ADMIN_PASSWORD})
        await until(pilot, lambda: any(r[0] == email for r in table_rows(pilot)), "the new user in the table")
    token = daemon.admin_token()
    found = daemon.call("GET", f"/api/v1/users?q=form-{unique}", token=token)["items"]
    assert [u["email"] for u in found] == [email]


async def test_users_filter_narrows_the_table_and_escape_clears_it(daemon: Daemon, unique: str) -> None:
    from tui.screens.users import UsersScreen

    token = daemon.admin_token()
    for name in ("alpha", "beta"):
        daemon.call("POST", "/api/v1/users", {"email": f"{name}-{unique}@example.com", "password": ADMIN_PASSWORD,
                                              "role": "user"}, token)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await until(pilot, lambda: any(f"beta-{unique}" in r[0] for r in table_rows(pilot)), "the users")
        await pilot.press("slash", *f"alpha-{unique}")
        await until(pilot, lambda: [r[0] for r in table_rows(pilot)] == [f"alpha-{unique}@example.com"], "the filter")
        await pilot.press("escape")
        await until(pilot, lambda: len(table_rows(pilot)) > 1, "the filter cleared")
        assert isinstance(app.screen, UsersScreen)  # esc closed the filter, not the screen
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "back to the dashboard")


async def test_deleting_a_user_asks_first_and_no_keeps_it(daemon: Daemon, unique: str) -> None:
    from tui.screens.dialogs import Confirm
    from tui.screens.users import UsersScreen
    from tui.widgets.table import FilterTable

    email = f"doomed-{unique}@example.com"
    token = daemon.admin_token()
    user = daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"}, token)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await until(pilot, lambda: any(r[0] == email for r in table_rows(pilot)), "the user")
        await pilot.press("slash", *email, "enter")
        await until(pilot, lambda: app.screen.query_one(FilterTable).selected == user["id"], "the user chosen")
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, UsersScreen), "the dialog closed")
        assert user["id"] in app.store.state.users
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation again")
        await pilot.press("y")
        await until(pilot, lambda: user["id"] not in app.store.state.users, "the user gone from the table")
    assert not daemon.call("GET", f"/api/v1/users?q=doomed-{unique}", token=token)["items"]


async def test_disable_and_role_change_reach_the_server(daemon: Daemon, unique: str) -> None:
    from tui.screens.users import UsersScreen
    from tui.widgets.table import FilterTable

    email = f"toggle-{unique}@example.com"
    token = daemon.admin_token()
    user = daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"}, token)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await pilot.press("slash", *email, "enter")
        await until(pilot, lambda: app.screen.query_one(FilterTable).selected == user["id"], "the user chosen")
        await pilot.press("x")
        await until(pilot, lambda: app.store.state.users[user["id"]].disabled, "disabled")
        await pilot.press("e")
        await until(pilot, lambda: app.store.state.users[user["id"]].role == "admin", "promoted")
    stored = daemon.call("GET", f"/api/v1/users/{user['id']}", token=token)
    assert stored["disabled"] is True and stored["role"] == "admin"


def session_id(access_token: str) -> str:
    """The `sid` claim of an access token (read, not verified: the test only needs to name the session)."""
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


async def test_sessions_screen_revokes_another_session(daemon: Daemon) -> None:
    from tui.screens.dialogs import Confirm
    from tui.screens.sessions import SessionsScreen
    from tui.widgets.table import FilterTable

    other = daemon.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    target = session_id(other["access_token"])
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "sessions", SessionsScreen)
        await until(pilot, lambda: any(s.id == target for s in app.store.state.sessions), "the other session")
        table = app.screen.query_one(FilterTable).table
        table.move_cursor(row=table.get_row_index(target))
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: all(s.id != target for s in app.store.state.sessions), "the session gone")
    with pytest.raises(urllib.error.HTTPError) as refused:
        daemon.call("GET", "/api/v1/users/me", token=other["access_token"])
    assert refused.value.code == 401
