"""Connect: the server, the account and the password. Servers and accounts are remembered; passwords never."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from shared.servers import normalise_server
from tui import credentials

if TYPE_CHECKING:
    from tui.app import BastionApp

DEFAULT_SERVER = "http://127.0.0.1:8420"


class ConnectScreen(Screen):
    app: BastionApp
    # A priority binding runs in the app's own key loop, before the next key is dispatched. Handled as the
    # field's Submitted message instead, focus moved only after that message came round, so what was typed
    # straight after Enter (a paste, a password manager, a fast typist) could still land in the email field.
    BINDINGS = [Binding("enter", "next_field", "Next", id="connect.next", show=False, priority=True)]

    def __init__(self, server: str | None = None, notice: str = "") -> None:
        super().__init__()
        self.server, self.notice = server, notice  # notice: why the console came back here

    def compose(self) -> ComposeResult:
        saved = self.app.saved
        account = saved.account_for(normalise_server(self.server) if self.server else None)
        server = self.server or (account.server if account else DEFAULT_SERVER)
        self.opened_with = (server, account.email if account else "")
        yield Static("[b]Bastion[/] › connect", id="status")
        with Horizontal(id="connect"):
            with Vertical(id="accounts", classes="panel"):
                yield Label("Remembered")
                yield OptionList(*[Option(f"{escape(a.email)}\n[dim]{escape(a.server)}[/]", id=str(i))
                                   for i, a in enumerate(saved.accounts)], id="remembered")
            with Vertical(id="login", classes="panel"):
                yield Label("Server")
                yield Input(server, id="server", compact=True)
                yield Label("Email")
                yield Input(account.email if account else "", id="email", compact=True)
                yield Label("Password")
                yield Input(password=True, id="password", compact=True)
                yield Button("Connect", id="connect-button", variant="primary")
                yield Static("", id="message", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.notice:
            self.failed(self.notice)
        email = self.query_one("#email", Input)
        self.query_one("#password" if email.value else "#email", Input).focus()
        # After the first refresh and in a thread: finding the keyring (a fifth of a second of imports and a
        # D-Bus round trip) must not hold up the screen, nor share the interpreter with drawing it.
        self.call_after_refresh(self.run_worker, self._find_keyring, name="keyring", thread=True,
                                exit_on_error=False)

    def _find_keyring(self) -> None:
        try:
            credentials.check()
        except credentials.NoKeyring as exc:
            self.app.call_from_thread(self.failed, str(exc))
            return
        self.app.call_from_thread(self._resume_as_opened)

    def _resume_as_opened(self) -> None:
        # Only the account the screen opened with: one the user has begun to type is theirs to submit, and
        # resuming under them would race their Connect.
        shown = (self.query_one("#server", Input).value, self.query_one("#email", Input).value)
        if shown == self.opened_with:
            self._resume()

    def _resume(self) -> None:
        """With tokens for the account shown still in the keyring, connect without asking."""
        email = self.query_one("#email", Input).value.strip()
        try:
            server = normalise_server(self.query_one("#server", Input).value)
        except ValueError:
            return  # submit() says what is wrong with it
        if not email:
            return
        tokens = credentials.load(server, email)
        if tokens is not None:
            self.query_one("#message", Static).update(f"resuming the session of {email}…")
            self.app.resume(server, email, tokens)

    def failed(self, message: str) -> None:
        self.query_one("#message", Static).update(message)
        self.query_one("#message", Static).add_class("error")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        account = self.app.saved.accounts[int(event.option.id or 0)]
        self.query_one("#server", Input).value = account.server
        self.query_one("#email", Input).value = account.email
        self.query_one("#password", Input).focus()
        self._resume()

    def action_next_field(self) -> None:
        focused = self.focused
        if not isinstance(focused, Input):
            raise SkipAction()  # the Connect button and the remembered accounts take Enter themselves
        if focused.id == "password":
            self.submit()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.submit()

    def submit(self) -> None:
        try:
            server = normalise_server(self.query_one("#server", Input).value)
        except ValueError as exc:
            self.failed(str(exc))
            return
        email = self.query_one("#email", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not (email and password):
            self.failed("the email and the password are both needed")
            return
        message = self.query_one("#message", Static)
        message.remove_class("error")
        message.update(f"connecting to {server}…")
        try:
            self.app.login(server, email, password)
        except credentials.NoKeyring as exc:
            self.failed(str(exc))
