"""One screen per task."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen


def screens_by_name() -> dict[str, type[Screen]]:
    """The screens the palette opens, by name; imported on first use, so the connect screen need not wait."""
    from tui.screens.audit import AuditScreen
    from tui.screens.collections import CollectionsScreen
    from tui.screens.dashboard import DashboardScreen
    from tui.screens.devices import DevicesScreen
    from tui.screens.keys import KeysScreen
    from tui.screens.search import SearchScreen
    from tui.screens.sessions import SessionsScreen
    from tui.screens.users import UsersScreen

    return {
        "dashboard": DashboardScreen,
        "users": UsersScreen,
        "sessions": SessionsScreen,
        "keys": KeysScreen,
        "collections": CollectionsScreen,
        "search": SearchScreen,
        "audit": AuditScreen,
        "devices": DevicesScreen,
    }
