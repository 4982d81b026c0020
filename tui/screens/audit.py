"""Audit (admin): the trail of who did what, newest first."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.widgets.table import FilterTable


class AuditScreen(StoreScreen):
    TITLE = "audit"
    SUMMARY = "Who did what (admin)"
    WATCHES = {"audit"}
    LOADS = ("audit",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def body(self) -> ComposeResult:
        yield FilterTable("at", "event", "actor", "target", "ip", "detail", id="audit")

    def draw(self) -> None:
        users = self.app.store.state.users

        def who(user_id: str | None) -> str:
            return users[user_id].email if user_id in users else (user_id or "")

        self.query_one(FilterTable).show([
            (e.id, (e.at.strftime("%m-%d %H:%M:%S"), e.event, who(e.actor_id), who(e.target_id), e.ip or "",
                    json.dumps(e.detail, separators=(",", ":")) if e.detail else ""))
            for e in self.app.store.state.audit
        ])

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("audit")
