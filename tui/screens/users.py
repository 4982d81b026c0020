"""Users (admin): the table with `/` filter; create, change role, disable, delete with confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm, Field, Form
from tui.store import UserRemoved, UserSaved
from tui.widgets.table import FilterTable


class UsersScreen(StoreScreen):
    TITLE = "users"
    SUMMARY = "Create, change role, disable and delete users (admin)"
    WATCHES = {"users"}
    LOADS = ("users",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("n", "create", "New", id="resource.create"),
        Binding("e", "role", "Role", id="users.role"),
        Binding("x", "disable", "Disable", id="users.disable"),
        Binding("ctrl+d", "delete", "Delete", id="resource.delete"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    def body(self) -> ComposeResult:
        yield FilterTable("email", "name", "role", "state", "last login", id="users")

    def draw(self) -> None:
        users = sorted(self.app.store.state.users.values(), key=lambda u: u.email)
        self.query_one(FilterTable).show([
            (u.id, (u.email, u.display_name, u.role, "disabled" if u.disabled else "active",
                    u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"))
            for u in users
        ])

    def _chosen(self):
        key = self.query_one(FilterTable).selected
        return self.app.store.state.users.get(key) if key else None

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("users")

    def action_create(self) -> None:
        def create(values: dict[str, str] | None) -> None:
            if values is None:
                return
            self.app.act("users.create", lambda c: c.create_user(
                values["email"].strip(), values["password"], values["role"], values["display_name"].strip()),
                UserSaved, notice=f"created {values['email'].strip()}")

        self.app.push_screen(Form("New user", [
            Field("email", "Email"), Field("display_name", "Name"),
            Field("password", "Password", password=True, placeholder="10 characters or more"),
            Field("role", "Role", choices=("user", "admin")),
        ]), create)

    def action_role(self) -> None:
        user = self._chosen()
        if user is None:
            return
        role = "user" if user.role == "admin" else "admin"
        self.app.act("users.update", lambda c: c.update_user(user.id, role=role), UserSaved,
                     notice=f"{user.email} is now {role}")

    def action_disable(self) -> None:
        user = self._chosen()
        if user is None:
            return
        self.app.act("users.update", lambda c: c.update_user(user.id, disabled=not user.disabled), UserSaved,
                     notice=f"{user.email} {'enabled' if user.disabled else 'disabled'}")

    def action_delete(self) -> None:
        user = self._chosen()
        if user is None:
            return

        def delete(yes: bool | None) -> None:
            if yes:
                self.app.act("users.delete", lambda c: c.delete_user(user.id), lambda _: UserRemoved(user.id),
                             notice=f"deleted {user.email}")

        self.app.push_screen(Confirm(f"Delete {user.email}? This cannot be undone."), delete)
