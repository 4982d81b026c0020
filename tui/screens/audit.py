"""Audit (admin): the trail of who did what, newest first."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.widgets.table import FilterTable


def readable(event: str, detail: dict[str, Any]) -> str:
    """An entry's detail as a person reads it: `user → admin`, `enabled → disabled`, `scopes: read,write`."""
    detail = dict(detail)
    parts = []
    if "from" in detail and "to" in detail:
        before, after = detail.pop("from"), detail.pop("to")
        if event == "user.status_changed":  # the change of `disabled`, however the database spelled it
            before, after = ("disabled" if v else "enabled" for v in (before, after))
        parts.append(f"{_value(before)} → {_value(after)}")
    parts += [f"{name.replace('_', ' ')}: {_value(value)}" for name, value in detail.items()]
    return ", ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return "-" if value is None else str(value)


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
                    readable(e.event, e.detail)))
            for e in self.app.store.state.audit
        ])

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("audit")
