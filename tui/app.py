"""The Bastion console: the Textual app that owns the client, the store and the workers.

Screens ask the app for data (`load`) or to act (`act`); the app runs the network call in a named worker
(exclusive for loads), posts the result back as an `Answered` message and applies it to the store, which
tells the screens. A failing worker lands in `on_worker_state_changed`, the one place errors are shown.
One more worker, `live`, keeps the WebSocket open and feeds its events to the store.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from shared.errors import ApiError, Code
from tui import config, credentials
from tui.explain import describe_error
from tui.store import (
    AuditLoaded, Change, CollectionsLoaded, Connected, Disconnected, EventArrived, Fetched, HealthLoaded,
    KeysLoaded, LiveStatus, SessionsLoaded, Store, UsersLoaded,
)

if TYPE_CHECKING:
    from shared.client import Client, Feed, Tokens

RECONNECT_MAX_S = 15.0
USERS_PAGE = 100  # users asked for at a time: the screen opens on the first page, the rest come on scrolling


class Answered(Message):
    """A network worker's result: the change for the store, and what to tell the user."""

    def __init__(self, change: Change | None, notice: str | None = None,
                 then: Callable[[Any], None] | None = None, result: Any = None) -> None:
        super().__init__()
        self.change, self.notice, self.then, self.result = change, notice, then, result


class LiveChange(Message):
    """A WebSocket event or status on its way to the store; `change` None means "resync": reload all."""

    def __init__(self, change: Change | None) -> None:
        super().__init__()
        self.change = change


async def _load_health(c: Client) -> Change:
    health = await c.health()
    try:
        await c.ready()
        not_ready = ""
    except ApiError as exc:
        not_ready = exc.detail or exc.title
    return HealthLoaded(health, not_ready)


async def _load_sessions(c: Client) -> Change:
    return SessionsLoaded(await c.sessions())


async def _load_keys(c: Client) -> Change:
    return KeysLoaded(await c.api_keys())


async def _load_collections(c: Client) -> Change:
    return CollectionsLoaded(await c.collections())


async def _load_audit(c: Client) -> Change:
    return AuditLoaded((await c.audit(limit=200)).items)


LOADERS: dict[str, Callable[[Client], Awaitable[Change]]] = {
    "health": _load_health,
    "sessions": _load_sessions,
    "api_keys": _load_keys,
    "collections": _load_collections,
    "audit": _load_audit,
}

class BastionApp(App[None]):
    TITLE = "Bastion"
    CSS_PATH = [Path(__file__).parent / "app.tcss"]  # absolute: subclasses may live anywhere
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding(":", "command_palette", "Command", id="app.command", key_display=":"),
        Binding("question_mark", "help", "Help", id="app.help", key_display="?"),
        Binding("escape", "back", "Back", id="app.back", show=False),
        Binding("ctrl+t", "change_theme", "Theme", id="app.theme", show=False),
        Binding("ctrl+l", "logout", "Logout", id="app.logout", show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
    ]

    def __init__(self, server: str | None = None, *, store: Store | None = None,
                 state: config.State | None = None, user_config: config.Config | None = None,
                 remember: bool = True) -> None:
        super().__init__()
        self.store = store or Store()
        self.client: Client | None = None
        self.account: str | None = None
        self.saved = state if state is not None else config.load_state()
        self.user_config = user_config if user_config is not None else config.Config()
        # `remember` is off for snapshot tests: nothing is written to the state file then.
        self.remember = remember
        self.requested_server = server
        self.theme_chosen = False
        self.feed: Feed | None = None  # the live socket, while the `live` worker runs
        self._users_asked: str | None = None  # the cursor of the page of users on its way
        self.store.watch(self, self._follow_topics)

    # -- start-up -----------------------------------------------------------------------------------

    def on_mount(self) -> None:
        from tui.screens.connect import ConnectScreen

        if self.user_config.keys:
            self.set_keymap(self.user_config.keys)
        theme = self.saved.theme or self.user_config.theme
        if theme and theme in self.available_themes:
            self.theme = theme
        self.theme_chosen = True
        self.push_screen(ConnectScreen(self.requested_server))

    async def on_unmount(self) -> None:
        # The live socket goes first, so closing the client leaves no connection half-open.
        for worker in self.workers.cancel_group(self, "live"):
            with suppress(Exception):
                await worker.wait()
        if self.client is not None:
            await self.client.close()

    def watch_theme(self, theme: str) -> None:
        if self.theme_chosen and self.remember:
            self.saved.theme = theme
            config.save_state(self.saved)

    # -- the workers --------------------------------------------------------------------------------

    def act(self, name: str, call: Callable[[Client], Awaitable[Any]], change: Callable[[Any], Change | None]
            | None = None, notice: str | None = None, then: Callable[[Any], None] | None = None,
            exclusive: bool = False) -> None:
        """Run `call` against the server in the worker `name`. Loads are exclusive (a newer one makes the older
        moot); changes are not, since a cancelled change may still have happened on the server."""
        client = self.client
        if client is None:
            self.notify("not connected", severity="error")
            return

        async def work() -> None:
            result = await call(client)
            self.post_message(Answered(change(result) if change else None, notice, then, result))

        # The function, not a coroutine: an exclusive worker cancelled before it starts then leaves no coroutine
        # that was never awaited.
        self.run_worker(work, name=name, group=name, exclusive=exclusive, exit_on_error=False)

    def load(self, *parts: str) -> None:
        if self.client is None:
            return  # offline there is nothing to refresh; the screens show what the store holds
        seen = self.store.state.events_seen
        for part in parts:
            if part == "users":
                self.load_users(self.store.state.users_query)
                continue
            self.act(f"load.{part}", LOADERS[part], lambda change: Fetched(change, seen), exclusive=True)

    def load_users(self, query: str = "", more: bool = False) -> None:
        """The first page of users whose email or name contains `query` (the server filters), or with `more` the
        page after those loaded. A page already on its way is not asked for twice."""
        cursor = self.store.state.users_cursor if more else None
        if self.client is None or (more and (cursor is None or cursor == self._users_asked)):
            return
        self._users_asked = cursor
        seen = self.store.state.events_seen

        async def page(c: Client) -> Change:
            answer = await c.users(q=query or None, limit=USERS_PAGE, cursor=cursor)
            return UsersLoaded(answer.items, answer.next_cursor, query, more)

        # A newer first page (another filter) makes an older one moot; a next page is not cancelled by it.
        self.act("load.users.more" if more else "load.users", page, lambda change: Fetched(change, seen),
                 exclusive=True)

    def on_answered(self, message: Answered) -> None:
        if message.change is not None:
            self.store.apply(message.change)
        if message.notice:
            self.notify(message.notice, markup=False)
        if message.then is not None:
            message.then(message.result)

    def on_live_change(self, message: LiveChange) -> None:
        if message.change is None:
            self.load(*self.overview_parts())
            return
        was = self.store.state.live
        self.store.apply(message.change)
        if was == "reconnecting" and self.store.state.live == "live":
            self.load("health")  # the panel said "not reachable": ask again rather than show the old answer
        kind = message.change.event.get("event", "") if isinstance(message.change, EventArrived) else ""
        if kind.startswith("vectors.") or kind == "collection.created":
            self.load("collections")  # the counts changed, or a new one came: the event does not carry them

    def overview_parts(self) -> list[str]:
        return ["health", "users", "sessions", "api_keys", "collections"] if self._is_admin() else \
            ["health", "sessions", "api_keys", "collections"]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker failure ends here: one clear line for the user."""
        if event.worker.name == "load.users.more" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._users_asked = None  # scrolling asks for that page again
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, ApiError) and error.code in (Code.UNAUTHORIZED, Code.TOKEN_REUSED) \
                and event.worker.name != "login":
            self.disconnect(revoke=False, reason="Your session has ended; log in again.")
            return
        self.notify(describe_error(error), severity="error", timeout=8, markup=False)
        from tui.screens.dialogs import Form

        if isinstance(self.screen, Form) and not event.worker.name.startswith(("load.", "live")):
            self.screen.failed(describe_error(error))  # the form stays open with what was typed
        if event.worker.name == "login":
            from tui.screens.connect import ConnectScreen

            if isinstance(self.screen, ConnectScreen):
                self.screen.failed(describe_error(error))

    # -- connecting ---------------------------------------------------------------------------------

    def login(self, server: str, email: str, password: str) -> None:
        credentials.check()

        async def work() -> None:
            client = self._client_for(server, email, None)
            try:
                answer = await client.login(email, password)
            except ApiError as exc:
                if exc.code not in (Code.MFA_REQUIRED, Code.MFA_ENROLMENT_REQUIRED):
                    await client.close()
                    raise
                refused = exc  # `exc` is unbound once the except block ends; the lambda runs later
                self.post_message(Answered(None, then=lambda _: self._second_factor(client, email, refused)))
                return
            except BaseException:
                await client.close()
                raise
            self.post_message(Answered(None, then=lambda _: self.connected(client, email, answer.user)))

        self.run_worker(work(), name="login", group="login", exclusive=True, exit_on_error=False)

    def _second_factor(self, client: Client, email: str, refused: ApiError) -> None:
        from tui.screens.second_factor import SecondFactorScreen

        self.push_screen(SecondFactorScreen(client, email, refused))

    def resume(self, server: str, email: str, tokens: Tokens) -> None:
        """Reconnect with tokens from the keyring; a dead session brings the connect screen back."""

        async def work() -> None:
            client = self._client_for(server, email, tokens)
            try:
                me = await client.me()
            except BaseException:
                await client.close()
                raise
            self.post_message(Answered(None, then=lambda _: self.connected(client, email, me)))

        self.run_worker(work(), name="login", group="login", exclusive=True, exit_on_error=False)

    def _client_for(self, server: str, email: str, tokens: Tokens | None) -> Client:
        # Imported here: aiohttp and the models cost a third of a second, which the first screen need not wait for.
        from shared.client import Client

        client = Client(server, tokens=tokens, user_agent="bastion-tui")
        client.on_tokens = lambda pair: credentials.save(client.server, email, pair)
        return client

    def connected(self, client: Client, email: str, me: Any) -> None:
        from tui.screens.dashboard import DashboardScreen

        self.client, self.account = client, email
        if self.remember:
            self.saved.remember(client.server, email)
            config.save_state(self.saved)
        self.store.apply(Connected(client.server, me))
        self.switch_screen(DashboardScreen())
        self.run_worker(self._live(client), name="live", group="live", exclusive=True, exit_on_error=False)

    def disconnect(self, revoke: bool, reason: str = "") -> None:
        from tui.screens.connect import ConnectScreen

        client, email = self.client, self.account
        self.client = None
        self.workers.cancel_group(self, "live")
        if client is not None:
            if email:
                # Now, not in the worker: the connect screen must not find these tokens and resume with them.
                credentials.forget(client.server, email)
            self.run_worker(self._close(client, revoke), name="logout", group="logout", exit_on_error=False)
        self.store.apply(Disconnected())
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(ConnectScreen(client.server if client else None, notice=reason))

    async def _close(self, client: Client, revoke: bool) -> None:
        try:
            if revoke:
                client.on_tokens = None  # the keyring entry is already gone
                await client.logout()
        finally:
            await client.close()

    async def _live(self, client: Client) -> None:
        """Feed the WebSocket's events to the store. The feed reconnects by itself after a drop and resumes
        from the last event seen; an ended session raises, and on_worker_state_changed brings back the connect
        screen."""
        feed = client.follow(self._topics(), since=self.store.state.last_event_id, max_delay_s=RECONNECT_MAX_S)
        self.feed = feed
        try:
            async for message in feed:
                kind = message.get("type")
                if kind == "subscribed":
                    self.post_message(LiveChange(LiveStatus("live")))
                elif kind == "event":
                    self.post_message(LiveChange(EventArrived(message)))
                elif kind == "resync":
                    self.post_message(LiveChange(None))
                elif kind == "dropped":
                    self.post_message(LiveChange(LiveStatus("reconnecting")))
        finally:
            if self.feed is feed:
                self.feed = None

    def _follow_topics(self, parts: set[str]) -> None:
        """A collection that appears in the store (made here, or seen in a reload) is followed at once, on the
        open socket: its events (vectors.upserted, ...) need no reconnect."""
        if self.feed is not None and self.client is not None and parts & {"collections", "me"}:
            self.feed.set_topics(self._topics())

    def _topics(self) -> list[str]:
        topics = ["me"] + (["users", "audit"] if self._is_admin() else [])
        return topics + [f"collections/{name}" for name in self.store.state.collections]

    def _is_admin(self) -> bool:
        me = self.store.state.me
        return bool(me and me.role == "admin")

    # -- navigation and app-wide actions ------------------------------------------------------------

    def action_open(self, name: str) -> None:
        """Open a screen by name, on top of the dashboard (so `esc` goes back to it)."""
        from tui.screens import screens_by_name

        if self.client is None:
            self.notify("log in first", severity="warning")
            return
        if name == "dashboard":
            while len(self.screen_stack) > 2:
                self.pop_screen()
            return
        screen = screens_by_name()[name]()
        if len(self.screen_stack) > 2:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if self.client is not None:
            from tui.screens import screens_by_name

            for name, screen in screens_by_name().items():
                yield SystemCommand(name, screen.SUMMARY, lambda name=name: self.action_open(name))
            yield SystemCommand("logout", "Revoke this session and forget its tokens", self.action_logout)
        yield SystemCommand("help", "Every key binding", self.action_help)
        yield SystemCommand("theme", "Change the colour theme", self.action_change_theme)
        yield SystemCommand("quit", "Leave Bastion", self.action_quit)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_back(self) -> None:
        # The connect and dashboard screens are the bottom of the stack (above Textual's default one).
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def action_logout(self) -> None:
        if self.client is not None:
            self.disconnect(revoke=True)
