"""Devices: device logins (RFC 8628) waiting for approval, as they arrive; approve (a) or deny (d) the one
selected. Approving gives that device a session of yours."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.widgets.table import FilterTable

# The list is read again this often while the screen is open: pending requests live ten minutes, and one
# should show within a moment of a terminal asking.
REFRESH_S = 2.0


class DevicesScreen(StoreScreen):
    TITLE = "devices"
    SUMMARY = "Device logins waiting for approval; approve or deny"
    BINDINGS = [
        Binding("a", "decide(True)", "Approve", id="devices.approve"),
        Binding("d", "decide(False)", "Deny", id="devices.deny"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def body(self) -> ComposeResult:
        yield FilterTable("code", "client", "address", "asked at", id="devices")

    def on_mount(self) -> None:
        # Textual calls StoreScreen.on_mount as well (a handler runs for each class that defines one): calling it
        # here too watched the store twice and drew twice.
        self.requests: list[Any] = []
        self.action_reload()
        self.set_interval(REFRESH_S, self.action_reload)

    def draw(self) -> None:
        self.query_one(FilterTable).show([
            (r.user_code, (r.user_code, r.client_name, r.ip, r.created_at.strftime("%H:%M:%S")))
            for r in getattr(self, "requests", [])
        ])

    def _shown(self, requests: list[Any]) -> None:
        self.requests = requests
        if self.is_attached:  # the answer may come after the operator moved to another screen (this one is gone)
            self.draw()

    def action_reload(self) -> None:
        self.app.act("load.devices", lambda client: client.pending_devices(), then=self._shown, exclusive=True)

    def action_decide(self, approve: bool) -> None:
        user_code = self.query_one(FilterTable).selected
        if user_code is None:
            return
        verb = "approved: it is signed in as you" if approve else "denied"
        self.app.act("devices.decide", lambda client: client.decide_device(user_code, approve),
                     notice=f"{user_code} {verb}", then=lambda _: self.action_reload())
