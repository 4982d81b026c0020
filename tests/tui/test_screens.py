"""Each screen's main action, driven with Pilot against a real daemon and the real keyring."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
from collections.abc import Callable
from contextlib import suppress

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Input
from textual.worker import WorkerCancelled

from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon, Refused
from tui import config, credentials
from tui.app import BastionApp
from tui.screens.dashboard import DashboardScreen

pytestmark = pytest.mark.usefixtures("keyring_ready")
SIZE = (100, 30)
WAIT_S = 15.0


async def until(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Let the app run until `condition` holds; fail after `timeout` seconds naming `what`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not _holds(condition):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; screen is {pilot.app.screen!r}")
        await pilot.pause(0.05)


def _holds(condition: Callable[[], object]) -> bool:
    try:
        return bool(condition())
    except NoMatches:  # the screen is still being composed
        return False


async def log_in(pilot: Pilot, daemon: Daemon, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
                 server: str | None = None) -> None:
    """`server`: another way to the daemon (a proxy) than its own URL."""
    app = pilot.app
    app.screen.query_one("#server", Input).value = server or daemon.url
    app.screen.query_one("#email", Input).value = email
    app.screen.query_one("#password", Input).value = password
    await pilot.click("#connect-button")
    await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")


def screen_text(app: BastionApp) -> str:
    """What the terminal shows, as text (the screenshot's SVG without its markup)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


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


async def settled(pilot: Pilot) -> None:
    """The connect screen's keyring check, and a login it set off, have run (the live feed never ends)."""
    for _ in range(3):
        await pilot.pause()
        ending = [worker for worker in pilot.app.workers if worker.group != "live"]
        with suppress(WorkerCancelled):  # one exclusive login replaced by another
            await asyncio.wait_for(pilot.app.workers.wait_for_complete(ending), WAIT_S)


async def test_the_remembered_account_resumes_on_open_and_one_being_typed_does_not(
        daemon: Daemon, private_dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.screens.connect import ConnectScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
    again = BastionApp()
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(again.screen, DashboardScreen), "the dashboard, nothing typed")
        assert again.store.state.me is not None and again.store.state.me.email == ADMIN_EMAIL
    # No account remembered, so the screen opens empty; the user types one whose tokens are in the keyring
    # before the keyring is found. Resuming under them would race their Connect: it stays theirs to submit.
    monkeypatch.setenv("XDG_STATE_HOME", str(private_dirs / "another-state"))
    typing = BastionApp()
    async with typing.run_test(size=SIZE) as pilot:
        typing.screen.query_one("#server", Input).value = daemon.url
        typing.screen.query_one("#email", Input).value = ADMIN_EMAIL
        await settled(pilot)
        assert isinstance(typing.screen, ConnectScreen) and typing.store.state.me is None


async def open_screen(pilot: Pilot, name: str, screen_type: type) -> None:
    pilot.app.action_open(name)
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


def new_user(daemon: Daemon, email: str) -> tuple[dict, str]:
    """A user made through the REST API by the admin; with the admin's token."""
    token = daemon.admin_token()
    return daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"}, token), token


async def choose_user(pilot, daemon: Daemon, email: str, user_id: str) -> None:
    """Logged in, on the Users screen, with this user found through the filter and selected."""
    from tui.screens.users import UsersScreen
    from tui.widgets.table import FilterTable

    await log_in(pilot, daemon)
    await open_screen(pilot, "users", UsersScreen)
    await pilot.press("slash", *email, "enter")
    await until(pilot, lambda: pilot.app.screen.query_one(FilterTable).selected == user_id, "the user chosen")


async def test_deleting_a_user_asks_first_and_no_keeps_it(daemon: Daemon, unique: str) -> None:
    from tui.screens.dialogs import Confirm
    from tui.screens.users import UsersScreen

    email = f"doomed-{unique}@example.com"
    user, token = new_user(daemon, email)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await choose_user(pilot, daemon, email, user["id"])
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


async def test_disable_enable_and_role_change_ask_first_and_x_says_what_it_does(daemon: Daemon, unique: str) -> None:
    from tui.screens.dialogs import Confirm
    from tui.screens.users import UsersScreen

    email = f"toggle-{unique}@example.com"
    user, token = new_user(daemon, email)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await choose_user(pilot, daemon, email, user["id"])
        assert "x Disable" in screen_text(app)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        assert f"Disable {email}?" in screen_text(app)
        await pilot.press("n")  # no: nothing changes
        await until(pilot, lambda: isinstance(app.screen, UsersScreen), "the dialog closed")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation again")
        await pilot.press("y")
        await until(pilot, lambda: app.store.state.users[user["id"]].disabled, "disabled")
        await until(pilot, lambda: "x Enable" in screen_text(app), "x labelled Enable")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the role confirmation")
        assert f"Make {email} an administrator?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: app.store.state.users[user["id"]].role == "admin", "promoted")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the enable confirmation")
        assert f"Enable {email}?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: not app.store.state.users[user["id"]].disabled, "enabled again")
    stored = daemon.call("GET", f"/api/v1/users/{user['id']}", token=token)
    assert stored["disabled"] is False and stored["role"] == "admin"


async def test_rename_and_password_reset_reach_the_server(daemon: Daemon, unique: str) -> None:
    from tui.screens.dialogs import Confirm, ShownOnce

    email = f"forgetful-{unique}@example.com"
    user, token = new_user(daemon, email)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await choose_user(pilot, daemon, email, user["id"])
        await pilot.press("f2")
        await until(pilot, lambda: app.screen.query("#field-display_name"), "the name form")
        await fill(pilot, {"display_name": "Ada Forgetful"})
        await until(pilot, lambda: app.store.state.users[user["id"]].display_name == "Ada Forgetful", "renamed")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ShownOnce), "the reset token shown once")
        reset_token = app.screen.secret
    assert daemon.call("GET", f"/api/v1/users/{user['id']}", token=token)["display_name"] == "Ada Forgetful"
    new_password = "a brand new password, please"
    daemon.call("POST", "/api/v1/auth/password-reset", {"reset_token": reset_token, "new_password": new_password})
    assert daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": new_password})["access_token"]


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
        # The session is named by more than its address: the client, when it began, when it was last used.
        session = next(s for s in app.store.state.sessions if s.id == target)
        question = str(app.screen.question)
        assert session.user_agent and session.user_agent in question
        assert f"created {session.created_at:%Y-%m-%d %H:%M}" in question and "last used" in question
        await pilot.press("y")
        await until(pilot, lambda: all(s.id != target for s in app.store.state.sessions), "the session gone")
    with pytest.raises(Refused) as refused:
        daemon.call("GET", "/api/v1/users/me", token=other["access_token"])
    assert refused.value.status == 401


async def test_a_user_created_elsewhere_appears_without_a_key_press(daemon: Daemon, unique: str) -> None:
    from tui.screens.users import UsersScreen

    app = BastionApp()
    email = f"live-{unique}@example.com"
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"},
                    daemon.admin_token())
        await until(pilot, lambda: any(r[0] == email for r in table_rows(pilot)), "the user pushed over the socket")
        assert any(e.get("event") == "user.created" for e in app.store.state.feed)


async def test_api_key_is_shown_once_then_listed_without_its_secret(daemon: Daemon, unique: str) -> None:
    from textual.widgets import Static

    from tui.screens.dialogs import ShownOnce
    from tui.screens.keys import KeysScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "keys", KeysScreen)
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#field-name"), "the new-key form")
        await fill(pilot, {"name": f"tui-{unique}"})
        await until(pilot, lambda: isinstance(app.screen, ShownOnce), "the key shown once")
        secret = app.screen.secret
        assert secret and str(app.screen.query_one("#secret", Static).render()) == secret
        await pilot.press("c")
        assert app.clipboard == secret
        await pilot.press("escape")
        await until(pilot, lambda: any(r[1] == f"tui-{unique}" for r in table_rows(pilot)), "the key in the table")
        assert all(secret not in " ".join(r) for r in table_rows(pilot))
        # Its id is shown, so two keys of one name can be told apart.
        key_id = next(k.id for k in app.store.state.api_keys if k.name == f"tui-{unique}")
        assert [key_id, f"tui-{unique}"] in [r[:2] for r in table_rows(pilot)]
        assert all(not hasattr(k, "key") for k in app.store.state.api_keys)


async def test_the_collections_screen_follows_a_graph_build_to_its_end_without_a_keypress(daemon: Daemon,
                                                                                          unique: str) -> None:
    """A build raises no event, and the last upsert's event comes before the build ends: the screen asks again
    while a namespace is building. Before, it said "building" until `r` was pressed."""
    import numpy as np
    from textual.widgets import Static

    from tui.screens.collections import CollectionsScreen

    name, token = f"tui-build-{unique}", daemon.admin_token()
    daemon.call("POST", "/api/v1/collections", {"name": name, "dimension": 8}, token)
    values = np.random.default_rng(3).normal(size=(21_000, 8)).round(4).tolist()  # over the 20,000 searched exactly
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "collections", CollectionsScreen)
        for start in range(0, len(values), 1000):
            daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [
                {"id": f"v{i}", "values": values[i]} for i in range(start, start + 1000)]}, token)
        await until(pilot, lambda: app.store.state.collections[name].count == 21_000, "every vector counted")
        await pilot.press("slash", *name, "enter")
        detail = app.screen.query_one("#detail", Static)
        await until(pilot, lambda: "graph ready, recall" in str(detail.render()), "the build's end", timeout=120)
    daemon.call("DELETE", f"/api/v1/collections/{name}", token=token)


async def test_collections_screen_creates_and_deletes_with_confirmation(daemon: Daemon, unique: str) -> None:
    from textual.widgets import Select, Static

    from tui.screens.collections import CollectionsScreen
    from tui.screens.dialogs import Confirm
    from tui.widgets.table import FilterTable

    name = f"tui-{unique}"
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "collections", CollectionsScreen)
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#field-name"), "the new-collection form")
        app.screen.query_one("#field-precision", Select).value = "i8"  # the graph of a million vectors in 2.5 GB
        await fill(pilot, {"name": name, "dimension": "3"})
        await until(pilot, lambda: any(r[0] == name for r in table_rows(pilot)), "the collection in the table")
        assert next(r for r in table_rows(pilot) if r[0] == name)[1:5] == ["3", "cosine", "i8", "0"]
        await pilot.press("slash", *name, "enter")
        await until(pilot, lambda: app.screen.query_one(FilterTable).selected == name, "the collection chosen")
        token = daemon.admin_token()
        assert daemon.call("GET", f"/api/v1/collections/{name}", token=token)["precision"] == "i8"
        daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [{"id": "a", "values": [1, 0, 0]}]}, token)
        detail = app.screen.query_one("#detail", Static)
        await until(pilot, lambda: "(default): 1 (exact)" in str(detail.render()), "the namespace and its search, live")
        assert "1 vectors of 3 (cosine, graph i8)" in str(detail.render())
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: name not in app.store.state.collections, "the collection gone")
    assert name not in [c["name"] for c in daemon.call("GET", "/api/v1/collections", token=daemon.admin_token())[
        "items"]]


async def search_in(pilot, daemon: Daemon, name: str) -> None:
    """Logged in, on the search screen, with collection `name` chosen."""
    from textual.widgets import Select

    from tui.screens.search import SearchScreen

    await log_in(pilot, daemon)
    await open_screen(pilot, "search", SearchScreen)
    await until(pilot, lambda: name in pilot.app.store.state.collections, "the collections")
    pilot.app.screen.query_one("#collection", Select).value = name


async def test_search_screen_queries_by_id_with_a_filter(daemon: Daemon, unique: str, tmp_path) -> None:
    from textual.widgets import Static

    name, token = f"search-{unique}", daemon.admin_token()
    daemon.call("POST", "/api/v1/collections", {"name": name, "dimension": 2, "metric": "cosine"}, token)
    daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [
        {"id": "near", "values": [1, 0.1], "metadata": {"team": "red"}},
        {"id": "far", "values": [0, 1], "metadata": {"team": "blue"}},
        {"id": "probe", "values": [1, 0], "metadata": {"team": "red"}},
    ]}, token)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await search_in(pilot, daemon, name)
        app.screen.query_one("#by-id", Input).value = "probe"
        app.screen.query_one("#filter", Input).value = '{"team": "blue"}'
        await pilot.press("ctrl+r")
        await until(pilot, lambda: rows(app.screen.query_one("#results", DataTable)), "the results")
        assert [r[0] for r in rows(app.screen.query_one("#results", DataTable))] == ["far"]
        app.screen.query_one("#filter", Input).value = '{"team": '
        await pilot.press("ctrl+r")
        problem = app.screen.query_one("#problem", Static)
        await until(pilot, lambda: "the filter is not JSON" in str(problem.render()), "the filter refused")


async def test_search_screen_finds_text_by_keyword_and_marks_the_matched_words(daemon: Daemon, unique: str) -> None:
    from tui.highlight import MARK

    name, token = f"words-{unique}", daemon.admin_token()
    daemon.call("POST", "/api/v1/collections", {"name": name, "dimension": 2}, token)
    daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [
        {"id": "paris", "values": [1, 0], "text": "Le Café de Flore", "metadata": {"city": "paris"}},
        {"id": "lyon", "values": [0, 1], "text": "a bakery in Lyon", "metadata": {"city": "lyon"}},
    ]}, token)
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await search_in(pilot, daemon, name)
        app.screen.query_one("#text", Input).value = "CAFE"
        await pilot.press("ctrl+r")
        table = app.screen.query_one("#results", DataTable)
        await until(pilot, lambda: rows(table), "the results")
        assert [r[0] for r in rows(table)] == ["paris"]
        shown = table.get_row_at(0)[2]
        assert [shown.plain[s.start:s.end] for s in shown.spans if s.style == MARK] == ["Café"]
        app.screen.query_one("#by-id", Input).value = "paris"  # text and an id: hybrid
        app.screen.query_one("#text", Input).value = "lyon"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: [r[0] for r in rows(table)] == ["lyon", "paris"], "the fused ranking")


async def test_audit_screen_lists_what_happened(daemon: Daemon) -> None:
    from tui.screens.audit import AuditScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "audit", AuditScreen)
        await until(pilot, lambda: any("login" in r[1] for r in table_rows(pilot)), "a login in the audit trail")


async def test_help_lists_every_binding_with_its_id_and_remapped_keys(daemon: Daemon) -> None:
    from tui.screens.help import HelpScreen
    from tui.screens.users import UsersScreen

    app = BastionApp(user_config=config.Config(keys={"resource.create": "a"}))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "users", UsersScreen)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        listed = rows(app.screen.query_one(DataTable))
        ids = {r[3] for r in listed}
        assert {"app.command", "app.help", "app.back", "app.theme", "resource.filter", "resource.delete",
                "users.role", "users.disable", "secret.copy"} <= ids
        assert ["users", "a", "New", "resource.create"] in listed
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, UsersScreen), "help closed")
        await pilot.press("a")  # the remapped key opens the new-user form
        await until(pilot, lambda: app.screen.query("#field-email"), "the form on the remapped key")


async def test_the_command_palette_opens_a_screen_by_name(daemon: Daemon) -> None:
    from tui.screens.sessions import SessionsScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await pilot.press("colon", *"sessions")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen), "the sessions screen")


async def test_the_theme_switch_is_remembered(daemon: Daemon) -> None:
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "nord"
        await pilot.pause()
    assert config.load_state().theme == "nord"
    again = BastionApp()
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord"


async def test_logout_revokes_the_session_and_forgets_the_tokens(daemon: Daemon) -> None:
    from tui.screens.connect import ConnectScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        tokens = credentials.load(daemon.url, ADMIN_EMAIL)
        assert tokens is not None
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen) and credentials.load(daemon.url, ADMIN_EMAIL)
                    is None, "logged out")
    with pytest.raises(Refused):
        daemon.call("GET", "/api/v1/users/me", token=tokens.access_token)


async def test_keys_typed_right_after_enter_go_to_the_next_field(daemon: Daemon) -> None:
    """A terminal delivers Enter and what follows it back to back (a paste, a password manager): every key
    after Enter belongs to the password, none to the email."""
    from textual import events

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#server", Input).value = daemon.url
        email = app.screen.query_one("#email", Input)
        email.value = "no-tokens-in-the-keyring@example.com"  # so the screen does not resume a session
        email.focus()
        await pilot.pause()
        for key, character in [("enter", "\r"), *((c, c) for c in "secret")]:
            app.post_message(events.Key(key, character))  # no pause between them, unlike pilot.press
        await until(pilot, lambda: app.screen.query_one("#password", Input).value == "secret", "the password")
        assert email.value == "no-tokens-in-the-keyring@example.com"


async def test_a_wrong_password_is_told_on_the_connect_screen(daemon: Daemon) -> None:
    from textual.widgets import Static

    from tui.screens.connect import ConnectScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#server", Input).value = daemon.url
        app.screen.query_one("#email", Input).value = ADMIN_EMAIL
        app.screen.query_one("#password", Input).value = "wrong password, surely"
        await pilot.click("#connect-button")
        message = app.screen.query_one("#message", Static)
        await until(pilot, lambda: "Invalid email or password" in str(message.render()), "the refusal")
        assert isinstance(app.screen, ConnectScreen)


async def test_the_console_shows_reconnecting_and_comes_back_live_after_a_restart(tmp_path, unique: str) -> None:
    from tests import daemon_process
    from tui.screens.users import UsersScreen

    first = daemon_process.start(tmp_path / "restarted")
    first.create_admin()
    port = int(first.url.rsplit(":", 1)[1])
    second = None
    app = BastionApp()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await log_in(pilot, first)
            await open_screen(pilot, "users", UsersScreen)
            await until(pilot, lambda: app.store.state.live == "live", "the live feed")
            first.stop()
            await until(pilot, lambda: app.store.state.live == "reconnecting", "the reconnecting notice")
            status = str(app.screen.query_one("#status").render())
            assert "reconnecting" in status
            second = daemon_process.start(tmp_path / "restarted", port=port)
            await until(pilot, lambda: app.store.state.live == "live", "live again after the restart")
            email = f"after-{unique}@example.com"
            second.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"},
                        second.admin_token())
            await until(pilot, lambda: any(r[0] == email for r in table_rows(pilot)), "an event after the restart")
    finally:
        first.stop()
        if second is not None:
            second.stop()


def calls_to(owner: object, name: str) -> list[tuple[tuple, dict]]:
    """Record the arguments of every later call of `owner.name` (which still runs as before)."""
    calls: list[tuple[tuple, dict]] = []
    method = getattr(owner, name)

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return method(*args, **kwargs)

    setattr(owner, name, recorded)
    return calls


async def test_after_a_brief_drop_the_console_resumes_with_since_and_gets_what_it_missed(
        daemon: Daemon, proxy, unique: str) -> None:
    from tui.screens.users import UsersScreen

    token = daemon.admin_token()
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon, server=proxy.url)
        await open_screen(pilot, "users", UsersScreen)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        # One event first, so that there is an id to resume from.
        before = f"before-{unique}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": before, "password": ADMIN_PASSWORD, "role": "user"}, token)
        await until(pilot, lambda: any(r[0] == before for r in table_rows(pilot)), "the first user, live")
        seen = app.store.state.last_event_id
        assert seen and app.client is not None
        sockets, loads = calls_to(app.client, "live"), calls_to(app, "load")

        proxy.cut()
        await until(pilot, lambda: app.store.state.live == "reconnecting", "the reconnecting notice")
        assert "reconnecting" in str(app.screen.query_one("#status").render())
        during = f"during-{unique}@example.com"  # straight to the daemon, which stays up
        daemon.call("POST", "/api/v1/users", {"email": during, "password": ADMIN_PASSWORD, "role": "user"}, token)
        proxy.restore()

        await until(pilot, lambda: any(r[0] == during for r in table_rows(pilot)), "the user made during the drop")
        await until(pilot, lambda: app.store.state.live == "live", "live again")
        assert sockets and all(kwargs.get("since") == seen for _, kwargs in sockets), sockets
        # Delivered by the replay, not by reloading everything (a resync reloads the users).
        assert not [args for args, _ in loads if "users" in args], loads
        assert any(e.get("event") == "user.created" and e["data"].get("email") == during for e in app.store.state.feed)


async def test_after_a_drop_with_no_event_to_resume_from_the_console_reloads(daemon: Daemon, proxy,
                                                                            unique: str) -> None:
    from tui.screens.users import UsersScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon, server=proxy.url)
        await open_screen(pilot, "users", UsersScreen)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        assert app.store.state.last_event_id is None  # nothing has happened since it connected
        loads = calls_to(app, "load")
        proxy.cut()
        await until(pilot, lambda: app.store.state.live == "reconnecting", "the reconnecting notice")
        during = f"unresumable-{unique}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": during, "password": ADMIN_PASSWORD, "role": "user"},
                    daemon.admin_token())
        proxy.restore()
        # `since` has nothing to name, so the event cannot be replayed: the users come from a reload instead.
        await until(pilot, lambda: any(r[0] == during for r in table_rows(pilot)), "the user made during the drop")
        assert [args for args, _ in loads if "users" in args], loads


async def test_a_collection_made_while_the_console_runs_gets_its_events_without_a_reconnect(
        daemon: Daemon, unique: str) -> None:
    from tui.screens.collections import CollectionsScreen

    name, token = f"followed-{unique}", daemon.admin_token()
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        # An event seen first: the new topic is then subscribed with `since`, and nothing published between
        # the collection's creation and the subscription can slip by (so the test cannot race it).
        email = f"seed-{unique}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"}, token)
        await until(pilot, lambda: app.store.state.last_event_id, "an event")
        assert app.client is not None
        sockets = calls_to(app.client, "live")
        await open_screen(pilot, "collections", CollectionsScreen)
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#field-name"), "the new-collection form")
        await fill(pilot, {"name": name, "dimension": "2"})
        await until(pilot, lambda: name in app.store.state.collections, "the collection in the store")
        daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [{"id": "a", "values": [1, 0]}]}, token)
        await until(pilot, lambda: any(e.get("event") == "vectors.upserted" and e.get("topic") == f"collections/{name}"
                                       for e in app.store.state.feed), "the upsert event")
        await until(pilot, lambda: app.store.state.collections[name].count == 1, "the count reloaded")
        assert sockets == [], "the console reconnected to hear the new collection"


async def test_a_collection_made_elsewhere_appears_and_is_followed_without_a_key_press(
        daemon: Daemon, unique: str) -> None:
    """Made by the same account from another session (a script, say): `me` tells of it, the console loads it
    and follows its topic on the open socket."""
    name, token = f"elsewhere-{unique}", daemon.admin_token()
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        assert app.client is not None
        sockets = calls_to(app.client, "live")
        daemon.call("POST", "/api/v1/collections", {"name": name, "dimension": 2, "metric": "cosine"}, token)
        await until(pilot, lambda: name in app.store.state.collections, "the collection in the store")
        daemon.call("POST", f"/api/v1/collections/{name}/upsert", {"vectors": [{"id": "a", "values": [1, 0]}]}, token)
        await until(pilot, lambda: app.store.state.collections[name].count == 1, "its upsert heard and reloaded")
        assert sockets == [], "the console reconnected to hear the new collection"


async def test_a_bad_server_url_is_told_plainly(daemon: Daemon) -> None:
    from textual.widgets import Static

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#server", Input).value = "ftp://somewhere"
        app.screen.query_one("#email", Input).value = ADMIN_EMAIL
        app.screen.query_one("#password", Input).value = ADMIN_PASSWORD
        await pilot.click("#connect-button")
        message = app.screen.query_one("#message", Static)
        await until(pilot, lambda: "not a server URL" in str(message.render()), "the refusal")


async def test_without_a_keyring_the_connect_screen_says_so() -> None:
    import keyring
    from keyring.backends import fail
    from textual.widgets import Static

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        app = BastionApp()
        async with app.run_test(size=SIZE) as pilot:
            message = app.screen.query_one("#message", Static)
            await until(pilot, lambda: "no keyring to keep the login in" in str(message.render()), "the keyring notice")
    finally:
        keyring.set_keyring(previous)


async def test_the_refreshed_tokens_replace_the_old_ones_in_the_keyring(daemon: Daemon) -> None:
    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        before = credentials.load(daemon.url, ADMIN_EMAIL)
        assert before is not None and app.client is not None and app.client.tokens is not None
        app.client.tokens.refresh_at = 0  # as if the access token were about to expire
        await pilot.press("r")  # the dashboard reloads: the client refreshes first
        await until(pilot, lambda: credentials.load(daemon.url, ADMIN_EMAIL).refresh_token != before.refresh_token,
                    "the new pair in the keyring")


async def test_a_session_revoked_elsewhere_brings_back_the_connect_screen(daemon: Daemon) -> None:
    from textual.widgets import Static

    from tui.screens.connect import ConnectScreen

    app = BastionApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await until(pilot, lambda: app.store.state.live == "live", "the live feed")
        assert app.client is not None and app.client.tokens is not None
        sid = session_id(app.client.tokens.access_token)
        daemon.call("DELETE", f"/api/v1/auth/sessions/{sid}", token=daemon.admin_token())
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen)
                    and "log in again" in str(app.screen.query_one("#message", Static).render()),
                    "the connect screen saying why")
    assert credentials.load(daemon.url, ADMIN_EMAIL) is None
