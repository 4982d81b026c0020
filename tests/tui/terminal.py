"""A real terminal for the console's end-to-end tests: a private tmux server, typed into and read back."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import REQUIRE, installed

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
def terminal() -> Iterator[Terminal]:
    installed("tmux")
    if "DBUS_SESSION_BUS_ADDRESS" not in os.environ:
        if REQUIRE:
            pytest.fail("a D-Bus session with gnome-keyring is required (run under dbus-run-session)")
        pytest.skip("no D-Bus session for the keyring: run under dbus-run-session")
    yield Terminal(f"bastion-test-{secrets.token_hex(4)}")
