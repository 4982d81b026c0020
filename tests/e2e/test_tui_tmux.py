"""`bastion` in a real terminal (tmux): log in on the connect screen, then watch a user created through
the REST API by someone else appear on the Users screen without a key press."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import daemon_process
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon
from tests.tui.terminal import Terminal, terminal  # noqa: F401 (the fixture)
from tests.tui.test_up import first_run  # noqa: F401 (the fixture)

@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with daemon_process.with_admin(tmp_path / "bastiond") as running:
        yield running


def test_a_user_created_through_the_api_appears_on_screen(terminal: Terminal, daemon: Daemon, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "TERM": "xterm-256color"}
    command = f"cd {ROOT} && {sys.executable} -m tui --server {daemon.url}"
    subprocess.run(["tmux", "-L", terminal.socket, "-f", "/dev/null", "new-session", "-d", "-s", "console",
                    "-x", "100", "-y", "30", command], env=env, check=True, timeout=10)
    try:
        terminal.wait_for("Password")
        terminal.type_into_field(ADMIN_EMAIL)
        terminal.type("Enter")  # on to the password
        terminal.type("-l", ADMIN_PASSWORD)
        terminal.wait_for("•" * len(ADMIN_PASSWORD))
        terminal.type("Enter")
        terminal.wait_for("dashboard")
        terminal.wait_for("● live")
        terminal.type("u")
        terminal.wait_for("● live  users")
        email = f"seen-{secrets.token_hex(3)}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"},
                    daemon.admin_token())
        screen = terminal.wait_for(email)
        assert "users" in screen
        assert ADMIN_PASSWORD not in screen
    finally:
        terminal.tmux("kill-server")


def readme_run_command() -> str:
    """The README's run command, as a newcomer copies it."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Run it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return block.strip()


def test_the_readme_run_command_reaches_a_logged_in_console_over_ssh_without_d_bus(
    terminal: Terminal, first_run: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    """A headless server reached over SSH: no D-Bus session, so no Secret Service. The README's command alone
    creates the first admin and opens the console logged in (its tokens in the kernel keyring); the next
    `bastion` finds them there and opens the dashboard without asking."""
    env = {k: v for k, v in first_run.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"),
               TERM="xterm-256color")
    command = f"cd {ROOT} && {readme_run_command()}; echo first run over; .venv/bin/bastion; sleep 30"
    subprocess.run(["tmux", "-L", terminal.socket, "-f", "/dev/null", "new-session", "-d", "-s", "console",
                    "-x", "100", "-y", "30", command], env=env, check=True, timeout=10)
    try:
        terminal.answer_first_admin("first@example.com", ADMIN_PASSWORD, within=300)  # pip install runs first
        screen = terminal.wait_for("first@example.com (admin)")
        assert "dashboard" in screen and "keyring" not in screen.lower()
        terminal.type("C-q")
        terminal.wait_for("first run over")
        # The second console: straight to the dashboard, with no password asked.
        screen = terminal.wait_for("first@example.com (admin)")
        assert "dashboard" in screen and "Password" not in screen
    finally:
        terminal.tmux("kill-server")
