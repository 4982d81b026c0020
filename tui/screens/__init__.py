"""One screen per task."""

from __future__ import annotations

from textual.screen import Screen

from tui.screens.audit import AuditScreen
from tui.screens.collections import CollectionsScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.keys import KeysScreen
from tui.screens.search import SearchScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.users import UsersScreen

SCREENS_BY_NAME: dict[str, type[Screen]] = {
    "dashboard": DashboardScreen,
    "users": UsersScreen,
    "sessions": SessionsScreen,
    "keys": KeysScreen,
    "collections": CollectionsScreen,
    "search": SearchScreen,
    "audit": AuditScreen,
}
