"""The console's second factor, driven with Pilot against a real daemon (MFA compulsory for admins) and the
real keyring: enrolment with the QR code drawn in the terminal, the recovery codes, then a code at login."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from textual.widgets import Input, Static

from tests import daemon_process
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, Daemon
from tests.tui.test_cli_mfa import code
from tests.tui.test_screens import SIZE, until
from tui import credentials
from tui.app import BastionApp
from tui.screens.connect import ConnectScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.second_factor import SecondFactorScreen

pytestmark = pytest.mark.usefixtures("keyring_ready")


@pytest.fixture(scope="module")
def strict_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with daemon_process.with_admin(tmp_path_factory.mktemp("bastiond-tui-mfa"),
                                   BASTION_MFA_REQUIRED_ROLES="admin") as running:
        yield running


async def submit_password(pilot, daemon: Daemon) -> None:
    credentials.forget(daemon.url, ADMIN_EMAIL)  # else the console resumes the last test's session
    app = pilot.app
    app.screen.query_one("#server", Input).value = daemon.url
    app.screen.query_one("#email", Input).value = ADMIN_EMAIL
    app.screen.query_one("#password", Input).value = ADMIN_PASSWORD
    await pilot.click("#connect-button")
    await until(pilot, lambda: isinstance(app.screen, SecondFactorScreen), "the second-factor screen")


async def type_code(pilot, value: str) -> None:
    field = pilot.app.screen.query_one("#code", Input)
    field.value = value
    field.focus()
    await pilot.press("enter")


async def test_an_admin_enrols_in_the_console_then_logs_in_with_a_code(strict_daemon: Daemon) -> None:
    app = BastionApp(remember=False)
    async with app.run_test(size=(100, 60)) as pilot:
        await submit_password(pilot, strict_daemon)
        screen = app.screen
        await until(pilot, lambda: "enter the key" in str(screen.query_one("#key", Static).content), "the key")
        assert "█" in str(screen.query_one("#qr", Static).content)
        secret = re.search(r"enter the key ([A-Z2-7]+)", str(screen.query_one("#key", Static).content))[1]
        await type_code(pilot, "000000")
        await until(pilot, lambda: "wrong" in str(screen.query_one("#message", Static).content), "the refusal")
        await type_code(pilot, code(secret, -1))
        shown = screen.query_one("#recovery-codes", Static)
        await until(pilot, lambda: "Recovery codes" in str(shown.content), "the recovery codes")
        assert len(re.findall(r"[A-Z2-9]{4}(?:-[A-Z2-9]{4}){3}", str(shown.content))) == 10
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        assert app.store.state.me.mfa_enabled

    app = BastionApp(remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await submit_password(pilot, strict_daemon)
        await type_code(pilot, code(secret))
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")


async def test_escape_goes_back_to_the_password(strict_daemon: Daemon) -> None:
    app = BastionApp(remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await submit_password(pilot, strict_daemon)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
