"""Users (admin): the table with `/` filter; create, rename, change role, disable, issue a password reset token,
delete with confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding

from tui.screens.base import StoreScreen
from tui.screens.dialogs import Confirm, Field, Form, ShownOnce
from tui.store import UserRemoved, UserSaved
from tui.widgets.table import FilterTable

if TYPE_CHECKING:
    from shared.models.users import User


def _cells(user: User) -> tuple[str, ...]:
    return (user.email, user.display_name, user.role, "disabled" if user.disabled else "active",
            user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never")


class UsersScreen(StoreScreen):
    TITLE = "users"
    SUMMARY = "Create, rename, change role, disable, reset passwords of and delete users (admin)"
    WATCHES = {"users"}
    LOADS = ("users",)
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="resource.filter", key_display="/"),
        Binding("n", "create", "New", id="resource.create"),
        Binding("e", "role", "Role", id="users.role"),
        # One key, two bindings: the footer names what `x` does to the highlighted user.
        Binding("x", "disable", "Disable", id="users.disable"),
        Binding("x", "enable", "Enable", id="users.enable"),
        Binding("p", "reset_password", "Password", id="users.reset"),
        # Out of the footer, which 80 columns cannot fit with it; `?` lists it.
        Binding("f2", "rename", "Rename", id="users.name", key_display="F2", show=False),
        Binding("ctrl+d", "delete", "Delete", id="resource.delete"),
        Binding("r", "reload", "Reload", id="resource.reload"),
    ]

    _x_for: bool | None = None  # whether `x` was last shown for a disabled user (None: no user)

    def __init__(self) -> None:
        super().__init__()
        self._formatted: dict[str, tuple[User, tuple[str, ...]]] = {}

    def body(self) -> ComposeResult:
        yield FilterTable("email", "name", "role", "state", "last login", id="users", server_filter=True)

    def draw(self) -> None:
        state = self.app.store.state
        query = state.users_query.lower()
        # The server's order (the pages as they came); a user created or changed live that the filter the
        # server was asked with would not find stays out.
        # A user's cells are formatted again only when the store holds a new version of the user: an event
        # changes one user, and the thousands of others loaded by scrolling keep theirs (the same tuple, which
        # the table compares in no time).
        formatted = self._formatted
        rows = []
        for user in state.users.values():
            if query and query not in user.email.lower() and query not in user.display_name.lower():
                continue
            known = formatted.get(user.id)
            if known is None or known[0] is not user:
                known = formatted[user.id] = (user, _cells(user))
            rows.append((user.id, known[1]))
        self.query_one(FilterTable).show(rows)
        self._follow_x()

    def on_filter_table_filtered(self, event: FilterTable.Filtered) -> None:
        self.app.load_users(event.text)

    def on_filter_table_near_end(self, event: FilterTable.NearEnd) -> None:
        self.app.load_users(self.app.store.state.users_query, more=True)

    def on_keyed_table_row_highlighted(self) -> None:
        self._follow_x()

    def _follow_x(self) -> None:
        """`x` says Enable or Disable for the user now highlighted. The footer is rebuilt only when that changes:
        rebuilding it costs more than the rest of a live event."""
        user = self._chosen()
        disabled = None if user is None else user.disabled
        if disabled != self._x_for:
            self._x_for = disabled
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("disable", "enable"):
            user = self._chosen()
            return user is not None and user.disabled == (action == "enable")
        return True

    def _chosen(self) -> User | None:
        tables = self.query(FilterTable)  # none yet while the screen is composed (the footer asks early)
        key = tables.first().selected if tables else None
        return self.app.store.state.users.get(key) if key else None

    def action_filter(self) -> None:
        self.query_one(FilterTable).open_filter()

    def action_reload(self) -> None:
        self.app.load("users")

    def action_create(self) -> None:
        def create(form: Form, values: dict[str, str]) -> None:
            email = values["email"].strip()
            self.app.act("users.create", lambda c: c.create_user(
                email, values["password"], values["role"], values["display_name"].strip()),
                UserSaved, notice=f"created {email}", then=form.done)

        self.app.push_screen(Form("New user", [
            Field("email", "Email"), Field("display_name", "Name"),
            Field("password", "Password", password=True, placeholder="10 characters or more"),
            Field("role", "Role", choices=("user", "admin")),
        ], create))

    def action_role(self) -> None:
        user = self._chosen()
        if user is None:
            return
        role = "user" if user.role == "admin" else "admin"
        question = f"Make {user.email} an administrator?" if role == "admin" else \
            f"Make {user.email} a regular user (no longer an administrator)?"
        self._confirmed(question + " Their sessions end, so the new role applies at once.",
                        lambda c: c.update_user(user.id, role=role), f"{user.email} is now {role}")

    def action_disable(self) -> None:
        user = self._chosen()
        if user is not None:
            self._confirmed(f"Disable {user.email}? Their sessions end and they cannot log in until enabled.",
                            lambda c: c.update_user(user.id, disabled=True), f"{user.email} disabled")

    def action_enable(self) -> None:
        user = self._chosen()
        if user is not None:
            self._confirmed(f"Enable {user.email}? They can log in again.",
                            lambda c: c.update_user(user.id, disabled=False), f"{user.email} enabled")

    def _confirmed(self, question: str, call, notice: str) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.app.act("users.update", call, UserSaved, notice=notice)

        self.app.push_screen(Confirm(question), answer)

    def action_rename(self) -> None:
        user = self._chosen()
        if user is None:
            return

        def rename(form: Form, values: dict[str, str]) -> None:
            name = values["display_name"].strip()
            self.app.act("users.update", lambda c: c.update_user(user.id, display_name=name), UserSaved,
                         notice=f"{user.email} is now named {name!r}", then=form.done)

        self.app.push_screen(Form(f"Name of {user.email}", [
            Field("display_name", "Name", default=user.display_name),
        ], rename))

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
