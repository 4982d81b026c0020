"""Sessions: your own sessions; revoke one (ctrl+d)."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm
from tui.store import SessionRevoked
from tui.widgets.table import FilterTable


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


class SessionsScreen(StoreScreen):
    TITLE = "sessions"
    SUMMARY = "Your sessions; revoke one"
    WATCHES = {"sessions"}
    LOADS = ("sessions",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("ctrl+d", "delete", "Revoke", id="resource.delete"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def body(self) -> ComposeResult:
        yield FilterTable("", "created", "last used", "ip", "client", id="sessions")

    def draw(self) -> None:
        self.query_one(FilterTable).show([
            (s.id, ("▶" if s.current else "", _when(s.created_at), _when(s.last_used_at), s.ip, s.user_agent))
            for s in self.app.store.state.sessions
        ])

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("sessions")

    def action_delete(self) -> None:
        key = self.query_one(FilterTable).selected
        session = next((s for s in self.app.store.state.sessions if s.id == key), None)
        if session is None:
            return
        question = "Revoke this session, the one you are using? You will be logged out." if session.current \
            else (f"Revoke the session of {session.user_agent or 'an unnamed client'} from "
                  f"{session.ip or 'an unknown address'}, created {_when(session.created_at)}, last used "
                  f"{_when(session.last_used_at)}?")

        def revoke(yes: bool | None) -> None:
            if not yes:
                return
            if session.current:
                self.app.action_logout()
                return
            self.app.act("sessions.revoke", lambda c: c.revoke_session(session.id),
                         lambda _: SessionRevoked(session.id), notice="session revoked")

        self.app.push_screen(Confirm(question), revoke)
