"""A login's second step in the console: the code from an authenticator app, or, for a role that must have
one, TOTP's enrolment first (its QR code drawn in the terminal) and then the recovery codes, shown once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from shared.errors import ApiError, Code
from tui.explain import describe_error

if TYPE_CHECKING:
    from shared.client import Client
    from tui.app import BastionApp


class SecondFactorScreen(Screen):
    """Pushed over the connect screen; it owns the half-logged-in client until the login is done or abandoned."""

    app: BastionApp
    DEFAULT_CSS = """
    SecondFactorScreen #second-factor { width: 80; height: auto; }
    SecondFactorScreen #qr { height: auto; width: auto; }
    SecondFactorScreen #recovery-codes { height: auto; }
    """
    BINDINGS = [Binding("escape", "abandon", "Back", id="second_factor.back")]

    def __init__(self, client: Client, email: str, refused: ApiError) -> None:
        super().__init__()
        self.client, self.email = client, email
        self.mfa_token = refused.extra.get("mfa_token", "")
        self.enrolling = refused.code == Code.MFA_ENROLMENT_REQUIRED
        self.user: Any = None  # once logged in: the user to connect as (after the recovery codes were seen)

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Bastion[/] › {'set up a second factor' if self.enrolling else 'second factor'}", id="status")
        with Vertical(id="second-factor", classes="panel"):
            if self.enrolling:
                yield Label("Your role needs a second factor. Scan this with an authenticator app:")
                yield Static("", id="qr", markup=False)
                yield Static("", id="key", markup=False)
            yield Label("Code" if self.enrolling else "Code from your authenticator app (or a recovery code)")
            yield Input(id="code", compact=True)
            yield Static("", id="recovery-codes", markup=False, classes="hidden")
            yield Static("", id="message", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#code", Input).focus()
        if self.enrolling:
            self.run_worker(self._start(), name="second_factor.start", exclusive=True, exit_on_error=False)

    async def _start(self) -> None:
        from shared.qr import terminal_qr

        try:
            secret = await self.client.start_totp(mfa_token=self.mfa_token)
        except ApiError as exc:
            self.failed(describe_error(exc))
            return
        self.query_one("#qr", Static).update(terminal_qr(secret.otpauth_uri))
        self.query_one("#key", Static).update(f"or enter the key {secret.secret}")

    def failed(self, message: str) -> None:
        self.query_one("#message", Static).update(message)
        self.query_one("#message", Static).add_class("error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.user is not None:  # the recovery codes were on screen: Enter goes on to the console
            self._done()
            return
        code = event.value.strip()
        if code:
            self.run_worker(self._send(code), name="second_factor.send", exclusive=True, exit_on_error=False)

    async def _send(self, code: str) -> None:
        try:
            if self.enrolling:
                confirmed = await self.client.confirm_totp(code, mfa_token=self.mfa_token)
                self.user = confirmed.session.user if confirmed.session else None
                self._show_recovery_codes(confirmed.recovery_codes)
                return
            self.user = (await self.client.verify_mfa(self.mfa_token, code)).user
        except ApiError as exc:
            self.query_one("#code", Input).value = ""
            self.failed(describe_error(exc))
            if exc.code == Code.UNAUTHORIZED:  # the mfa_token is dead: back to the password
                self.notify(describe_error(exc), severity="error", markup=False)
                self.action_abandon()
            return
        self._done()

    def _show_recovery_codes(self, codes: list[str]) -> None:
        shown = self.query_one("#recovery-codes", Static)
        shown.update("TOTP is on. Recovery codes, each good once; write them down now, they are not shown again:\n  "
                     + "\n  ".join(codes) + "\n\nPress Enter to go on.")
        shown.remove_class("hidden")
        self.query_one("#message", Static).update("")

    def _done(self) -> None:
        client, email, user = self.client, self.email, self.user
        self.app.pop_screen()
        self.app.connected(client, email, user)

    def action_abandon(self) -> None:
        self.run_worker(self.client.close(), name="second_factor.close", exit_on_error=False)
        self.app.pop_screen()
