"""Dashboard: the server's health, counts, and the live event feed."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.markup import escape
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from tui.screens.base import StoreScreen


class DashboardScreen(StoreScreen):
    TITLE = "dashboard"
    SUMMARY = "Server health, counts and the live event feed"
    WATCHES = {"health", "users", "collections", "sessions", "api_keys", "feed", "me", "live"}
    BINDINGS = [
        Binding("r", "reload", "Reload", id="dashboard.reload"),
        Binding("u", "app.open('users')", "Users", id="dashboard.users"),
        Binding("c", "app.open('collections')", "Collections", id="dashboard.collections"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="tiles"):
            yield Static(id="health", classes="tile")
            yield Static(id="counts", classes="tile")
        yield Static("Live events", classes="section")
        yield DataTable(id="feed", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        # StoreScreen's on_mount runs too (Textual calls every class's handler); this adds the reload.
        self.action_reload()

    def action_reload(self) -> None:
        self.app.load(*self.app.overview_parts())

    def draw(self) -> None:
        state = self.app.store.state
        if state.live == "reconnecting":  # what was last heard from the server no longer holds
            health = "[$warning]◌ not reachable[/]\nreconnecting…"
        elif state.health is None:
            health = "[dim]health: asking…[/]"
        elif state.not_ready:
            health = f"[$error]● not ready[/]\n{escape(state.not_ready)}"
        else:
            health = "[$success]● healthy[/]\n" + ", ".join(sorted((state.health.checks or {}).keys()))
        self.query_one("#health", Static).update(health)
        admin = state.me is not None and state.me.role == "admin"
        more = "+" if state.users_cursor else ""  # the users are loaded a page at a time
        lines = [f"users        {len(state.users)}{more}" if admin else "users        (admin only)",
                 f"collections  {len(state.collections)}",
                 f"sessions     {len(state.sessions)}",
                 f"api keys     {len(state.api_keys)}"]
        self.query_one("#counts", Static).update("\n".join(lines))
        feed = self.query_one("#feed", DataTable)
        feed.clear(columns=True)  # and the columns again, so their widths fit the new rows
        feed.add_columns("at", "event", "topic", "about")
        for event in state.feed:
            data = event.get("data") or {}
            about = data.get("email") or data.get("name") or data.get("id") or ""
            feed.add_row(*(Text(str(v)) for v in (str(event.get("at", ""))[11:19], event.get("event", ""),
                                                   event.get("topic", ""), about)))
