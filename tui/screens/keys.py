"""API keys: create (the key is shown once, with a copy action) and revoke."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from shared.models.auth import ApiKey
from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm, Field, Form, ShownOnce
from tui.store import KeyRevoked, KeySaved
from tui.widgets.table import FilterTable

SCOPES = ("read", "write", "admin")


class KeysScreen(StoreScreen):
    TITLE = "api keys"
    SUMMARY = "Create and revoke API keys"
    WATCHES = {"api_keys"}
    LOADS = ("api_keys",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("n", "create", "New", id="resource.create"),
        Binding("ctrl+d", "delete", "Revoke", id="resource.delete"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def body(self) -> ComposeResult:
        yield FilterTable("id", "name", "scopes", "created", "expires", "last used", id="keys")

    def draw(self) -> None:
        def when(t) -> str:
            return t.strftime("%Y-%m-%d %H:%M") if t else "never"

        self.query_one(FilterTable).show([
            (k.id, (k.id, k.name, ",".join(k.scopes), when(k.created_at), when(k.expires_at), when(k.last_used_at)))
            for k in self.app.store.state.api_keys
        ])

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("api_keys")

    def action_create(self) -> None:
        def create(form: Form, values: dict[str, str]) -> None:
            scopes = [s.strip() for s in values["scopes"].split(",") if s.strip()]

            def shown(created) -> None:
                form.done()
                self.app.push_screen(ShownOnce(f"API key {created.name} (id {created.id})", created.key))

            self.app.act(
                "keys.create", lambda c: c.create_api_key(values["name"].strip(), scopes),
                # The store keeps the key without its secret; the secret goes to the screen once.
                lambda created: KeySaved(ApiKey.model_validate(created.model_dump(exclude={"key"}))), then=shown,
            )

        self.app.push_screen(Form("New API key", [
            Field("name", "Name"), Field("scopes", "Scopes", default="read", placeholder="read,write,admin"),
        ], create))

    def action_delete(self) -> None:
        key_id = self.query_one(FilterTable).selected
        key = next((k for k in self.app.store.state.api_keys if k.id == key_id), None)
        if key is None:
            return

        def revoke(yes: bool | None) -> None:
            if yes:
                self.app.act("keys.revoke", lambda c: c.revoke_api_key(key.id), lambda _: KeyRevoked(key.id),
                             notice=f"revoked {key.name}")

        self.app.push_screen(Confirm(f"Revoke the API key {key.name} (id {key.id})?"), revoke)
