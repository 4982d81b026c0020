"""Users (admin): the table with `/` filter; create, rename, change role, disable, issue a password reset token,
delete with confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm, Field, Form, ShownOnce
from tui.store import UserRemoved, UserSaved
from tui.widgets.table import FilterTable


class UsersScreen(StoreScreen):
    TITLE = "users"
    SUMMARY = "Create, rename, change role, disable, reset passwords of and delete users (admin)"
    WATCHES = {"users"}
    LOADS = ("users",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("n", "create", "New", id="resource.create"),
        Binding("e", "role", "Role", id="users.role"),
        Binding("x", "disable", "Disable", id="users.disable"),
        Binding("p", "reset_password", "Password", id="users.reset"),
        # Out of the footer, which 80 columns cannot fit with it; `?` lists it.
        Binding("f2", "rename", "Rename", id="users.name", key_display="F2", show=False),
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

    def action_rename(self) -> None:
        user = self._chosen()
        if user is None:
            return

        def rename(values: dict[str, str] | None) -> None:
            if values is None:
                return
            name = values["display_name"].strip()
            self.app.act("users.update", lambda c: c.update_user(user.id, display_name=name), UserSaved,
                         notice=f"{user.email} is now named {name!r}")

        self.app.push_screen(Form(f"Name of {user.email}", [
            Field("display_name", "Name", default=user.display_name),
        ]), rename)

    def action_reset_password(self) -> None:
        """For a user who forgot their password: a one-time token for them (no mail server is assumed)."""
        user = self._chosen()
        if user is None:
            return

        def shown(answer) -> None:
            until = answer.expires_at.strftime("%Y-%m-%d %H:%M %Z")
            self.app.push_screen(ShownOnce(f"Password reset token for {user.email} (one use, until {until})",
                                           answer.reset_token))

        def issue(yes: bool | None) -> None:
            if yes:
                self.app.act("users.reset", lambda c: c.password_reset(user.id), then=shown)

        self.app.push_screen(Confirm(f"Issue a password reset token for {user.email}? Whoever holds it can set "
                                     "their password."), issue)

    def action_delete(self) -> None:
        user = self._chosen()
        if user is None:
            return

        def delete(yes: bool | None) -> None:
            if yes:
                self.app.act("users.delete", lambda c: c.delete_user(user.id), lambda _: UserRemoved(user.id),
                             notice=f"deleted {user.email}")

        self.app.push_screen(Confirm(f"Delete {user.email}? This cannot be undone."), delete)
