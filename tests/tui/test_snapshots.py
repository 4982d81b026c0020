"""Snapshots of the main screens at 80x24 (the smallest terminal the console supports).

The screens draw a store filled with fixed data, so the pictures do not depend on a server's ids or clocks;
the cursor does not blink and the theme is fixed. A changed screen fails with the new picture written to
test-artifacts/; after checking it, `BASTION_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py` records it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.screen import Screen
from textual.widgets import Input

from shared.models import Health
from shared.models.auth import ApiKey, Session
from shared.models.users import User
from shared.models.vectors import Collection
from tui import config
from tui.app import BastionApp
from tui.store import State, Store

SNAPSHOTS = Path(__file__).parent / "snapshots"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIZE = (80, 24)
T = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The help screen names the config file; a fixed path keeps its picture the same (nothing is written)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/you/.config")


def user(n: int, email: str, role: str = "user", disabled: bool = False) -> User:
    return User(id=f"usr_{n}", email=email, display_name=email.split("@")[0].title(), role=role, disabled=disabled,
                created_at=T, updated_at=T, last_login_at=T if n % 2 else None)


def fixed_state() -> State:
    admin = user(1, "admin@example.com", "admin")
    state = State(server="http://127.0.0.1:8420", me=admin, live="live",
                  health=Health(status="ok", checks={"database": "ok", "cache": "ok"}))
    for u in (admin, user(2, "ada@example.com"), user(3, "grace@example.com", "admin"),
              user(4, "linus@example.com", disabled=True)):
        state.users[u.id] = u
    state.sessions = [Session(id="ses_1", created_at=T, last_used_at=T, user_agent="bastion-tui", ip="127.0.0.1",
                              current=True)]
    state.api_keys = [ApiKey(id="key_1", name="ci", scopes=["read"], created_at=T)]
    state.collections["docs"] = Collection(name="docs", dimension=384, metric="cosine", count=1200,
                                           namespaces={"": 1200}, owner_id="usr_1", created_at=T)
    for i, (event, data) in enumerate([("user.created", {"email": "ada@example.com"}),
                                       ("collection.created", {"name": "docs"})]):
        state.feed.appendleft({"type": "event", "id": str(i), "topic": "users", "event": event,
                               "at": f"2026-11-25T19:0{i}:00Z", "data": data})
    return state


async def snapshot(screen: Screen | None, name: str) -> None:
    app = BastionApp(store=Store(fixed_state()), state=config.State(), remember=False)
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "textual-dark"
        if screen is not None:
            await app.push_screen(screen)
        await pilot.pause()
        for box in app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()
        picture = app.export_screenshot(title=name)
    expected = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("BASTION_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        expected.write_text(picture)
    if not expected.exists():
        pytest.fail(f"no snapshot {expected}; record it with BASTION_UPDATE_SNAPSHOTS=1")
    if picture != expected.read_text():
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"{name}.svg").write_text(picture)
        pytest.fail(f"the {name} screen changed: compare {ARTIFACTS / (name + '.svg')} with {expected}")


async def test_connect_screen() -> None:
    await snapshot(None, "connect")


async def test_dashboard_screen() -> None:
    from tui.screens.dashboard import DashboardScreen

    await snapshot(DashboardScreen(), "dashboard")


async def test_users_screen() -> None:
    from tui.screens.users import UsersScreen

    await snapshot(UsersScreen(), "users")


async def test_collections_screen() -> None:
    from tui.screens.collections import CollectionsScreen

    await snapshot(CollectionsScreen(), "collections")


async def test_help_screen() -> None:
    from tui.screens.help import HelpScreen

    await snapshot(HelpScreen(), "help")
