"""`bastion` in a real terminal (tmux): log in on the connect screen, then watch a user created through
the REST API by someone else appear on the Users screen without a key press."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE
from tests.tui import daemon_process
from tests.tui.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon

WAIT_S = 30.0


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "console")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "console", *keys)

    def wait_for(self, text: str, within: float = WAIT_S) -> str:
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {within}s; the screen shows:\n{screen}")
            time.sleep(0.2)

    def type_into_field(self, text: str) -> None:
        """Type into the focused field until it shows `text`: keys sent while the terminal is still being
        set up can be lost, so an incomplete attempt is cleared (ctrl+u) and typed again."""
        deadline = time.monotonic() + WAIT_S
        while True:
            self.type("-l", text)
            try:
                self.wait_for(text, within=3)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.type("C-u")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        if REQUIRE:
            pytest.fail("tmux is required (BASTION_TEST_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("tmux is not installed")
    if "DBUS_SESSION_BUS_ADDRESS" not in os.environ:
        if REQUIRE:
            pytest.fail("a D-Bus session with gnome-keyring is required (run under dbus-run-session)")
        pytest.skip("no D-Bus session for the keyring: run under dbus-run-session")
    yield Terminal(f"bastion-test-{secrets.token_hex(4)}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = daemon_process.start(tmp_path / "bastiond")
    try:
        running.create_admin()
        yield running
    finally:
        running.stop()


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
        terminal.wait_for(ADMIN_EMAIL)
        email = f"seen-{secrets.token_hex(3)}@example.com"
        daemon.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD, "role": "user"},
                    daemon.admin_token())
        screen = terminal.wait_for(email)
        assert "users" in screen
        assert ADMIN_PASSWORD not in screen
    finally:
        terminal.tmux("kill-server")
