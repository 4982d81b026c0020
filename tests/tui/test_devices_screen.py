"""The console's device screen, with Pilot against a real daemon: a device login appears while the screen is
open, and one key approves it; the device then gets a session of the operator's."""

from __future__ import annotations

import pytest

from tests.daemon_process import ADMIN_EMAIL, Daemon, Refused
from tests.tui.test_screens import SIZE, log_in, open_screen, table_rows, until
from tui.app import BastionApp
from tui.screens.devices import DevicesScreen

pytestmark = pytest.mark.usefixtures("keyring_ready")


async def test_a_pending_device_appears_live_and_one_key_approves_it(daemon: Daemon) -> None:
    app = BastionApp(remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "devices", DevicesScreen)
        grant = daemon.call("POST", "/api/v1/auth/device", {"client_name": "console test"})
        await until(pilot, lambda: [grant["user_code"], "console test"] in [r[:2] for r in table_rows(pilot)],
                    "the request in the table")
        await pilot.press("a")
        await until(pilot, lambda: table_rows(pilot) == [], "the request to leave the table")
    pair = daemon.call("POST", "/api/v1/auth/device/token", {"device_code": grant["device_code"]})
    assert pair["user"]["email"] == ADMIN_EMAIL


async def test_d_denies(daemon: Daemon) -> None:
    app = BastionApp(remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "devices", DevicesScreen)
        grant = daemon.call("POST", "/api/v1/auth/device", {"client_name": "to deny"})
        await until(pilot, lambda: any(r[0] == grant["user_code"] for r in table_rows(pilot)), "the request")
        pilot.app.screen.query_one("KeyedTable").move_cursor(
            row=[r[0] for r in table_rows(pilot)].index(grant["user_code"]))
        await pilot.press("d")
        await until(pilot, lambda: all(r[0] != grant["user_code"] for r in table_rows(pilot)), "the request to go")
    with pytest.raises(Refused) as refused:
        daemon.call("POST", "/api/v1/auth/device/token", {"device_code": grant["device_code"]})
    assert "access_denied" in str(refused.value)


async def test_an_answer_after_leaving_the_screen_does_not_crash_the_console(daemon: Daemon) -> None:
    """The list is read every 2 s: a reading that comes back after the operator moved to another screen (the
    palette replaces this one) used to look for the removed table and end the console with a traceback."""
    from tui.screens.users import UsersScreen

    app = BastionApp(remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, daemon)
        await open_screen(pilot, "devices", DevicesScreen)
        devices = pilot.app.screen
        await open_screen(pilot, "users", UsersScreen)
        devices._shown([])  # what the reading's answer does when it arrives now
        await pilot.pause()
        assert isinstance(pilot.app.screen, UsersScreen)
    assert app.return_code in (0, None)
